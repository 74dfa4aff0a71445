"""The expression backend: fer's FER2013 features + HOG + LBP of the same aligned chip, per frame and by name."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_features_media import face_frame

from emotion_lib.features.faces import get_face_backend
from emotion_lib.features.faces.expression import HOG_CELLS, descriptor_dim
from emotion_lib.features.images import hog_lbp_features
from emotion_lib.features.store import ExtractionConfig


@pytest.fixture(scope="module")
def expression():
    return get_face_backend("expression")


def blank(size: int = 224) -> np.ndarray:
    return np.full((size, size, 3), 90, np.uint8)


def test_compact_vector_keeps_faceless_frames_in_place(expression):
    embeddings, mask = expression.embed([face_frame(0), blank(), face_frame(2)])
    assert expression.dim == 128 + 324 + 531 == 983
    assert embeddings.shape == (3, 983) and embeddings.dtype == np.float32
    assert mask.tolist() == [True, False, True]
    assert not embeddings[1].any() and np.isfinite(embeddings).all()
    assert np.abs(embeddings[0] - embeddings[2]).max() > 1e-3  # two faces, two vectors


def test_fer_features_and_descriptor_of_the_same_chip(expression):
    frames = [face_frame(1), face_frame(1)[:, ::-1].copy()]
    embeddings, mask = expression.embed(frames)
    assert mask.all()
    fer, _ = get_face_backend("fer", output="features").embed(frames)
    np.testing.assert_allclose(embeddings[:, :128], fer, rtol=1e-5, atol=1e-5)
    chips = [cv2.cvtColor(expression.aligner.chip(frame), cv2.COLOR_RGB2GRAY) for frame in frames]
    grey = np.stack([cv2.resize(chip, (48, 48), interpolation=cv2.INTER_AREA) for chip in chips])
    np.testing.assert_allclose(embeddings[:, 128:], hog_lbp_features(grey, grid=3, cell=12), atol=1e-6)
    again, _ = expression.embed(frames)
    np.testing.assert_array_equal(again, embeddings)  # deterministic


def test_options_set_the_dimension_and_key_the_cache():
    wide = get_face_backend("expression", hog_cell=8, lbp_grid=4)
    embeddings, mask = wide.embed([face_frame(0)])
    assert wide.dim == embeddings.shape[1] == 128 + 900 + 944 and mask.all()
    assert wide.config()["hog_cell"] == 8 and wide.config()["lbp_grid"] == 4
    default, explicit, other = (
        ExtractionConfig(video_backend="expression", backend_options=options)
        for options in ({}, {"hog_cell": 12, "lbp_grid": 3}, {"hog_cell": 8})
    )
    assert default.key() == explicit.key() != other.key()


@pytest.mark.parametrize("options,message", [({"hog_cell": 10}, "hog_cell"), ({"lbp_grid": 0}, "lbp_grid")])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        get_face_backend("expression", **options)
    with pytest.raises(ValueError, match="'expression' does not accept option\\(s\\) output"):
        get_face_backend("expression", output="features")


@pytest.mark.parametrize("cell", HOG_CELLS)
@pytest.mark.parametrize("grid", [1, 3, 4])
def test_descriptor_dim_matches_the_descriptor(cell, grid):
    images = np.random.default_rng(cell * grid).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    assert hog_lbp_features(images, grid=grid, cell=cell).shape == (2, descriptor_dim(cell, grid))


def test_default_still_image_descriptor_is_unchanged():
    images = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    features = hog_lbp_features(images)
    hog = cv2.HOGDescriptor((48, 48), (16, 16), (8, 8), (8, 8), 9).compute(images[0]).ravel()
    assert features.shape == (1, 1844)
    np.testing.assert_allclose(features[0, :900], hog)
    with pytest.raises(ValueError, match="divide 48"):
        hog_lbp_features(images, cell=10)


def test_first_block_weight_scales_only_the_first_block_and_is_searchable():
    from sklearn.base import clone

    from emotion_lib.experiments.ckplus import FirstBlockWeight, block_weighted_logistic

    features = np.arange(12, dtype=float).reshape(3, 4)
    weighted = FirstBlockWeight(n=2, weight=3.0).fit(features).transform(features)
    np.testing.assert_array_equal(weighted[:, :2], 3.0 * features[:, :2])
    np.testing.assert_array_equal(weighted[:, 2:], features[:, 2:])
    assert features[0, 0] == 0.0 and features[0, 1] == 1.0  # the input is not changed in place
    spec = block_weighted_logistic(0, n_first=2)
    assert spec.grid["firstblockweight__weight"] == [1.0, 2.0, 3.0]
    assert clone(spec.estimator).set_params(firstblockweight__weight=2.0).get_params()["firstblockweight__n"] == 2
