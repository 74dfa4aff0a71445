"""The face model recipe: candidates whose widths match their backends, video-only data with mirrors and masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.experiments.face_model import (
    FACE_CANDIDATES,
    FACE_RECIPE,
    MODEL_CANDIDATES,
    FaceSequences,
    make_recipe,
    training_sides,
    video_data,
)
from emotion_lib.experiments.registry import EXPERIMENTS, experiment
from emotion_lib.features.faces.expression import ExpressionBackend, descriptor_dim
from emotion_lib.features.faces.fer import FerBackend
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig


def backend_dim(extraction: ExtractionConfig) -> int:
    """The width a backend gives with an extraction's options, without loading its model."""
    options = dict(extraction.backend_options)
    if extraction.video_backend == "fer":
        return FerBackend.OUTPUTS[options["output"]]
    assert extraction.video_backend == "expression"
    return ExpressionBackend.FER_DIM + descriptor_dim(options.get("hog_cell", 12), options.get("lbp_grid", 3))


@pytest.mark.parametrize("face_features", FACE_CANDIDATES)
@pytest.mark.parametrize("model", MODEL_CANDIDATES)
def test_every_candidate_is_a_video_only_recipe_of_the_right_width(face_features, model):
    recipe = make_recipe(face_features, model)
    assert recipe.config.modalities == ("video",)
    assert recipe.config.video_dim == backend_dim(recipe.extraction)
    assert face_features in (recipe.extraction.video_backend, "fer_features")


def test_face_recipe_is_one_of_the_candidates_and_runs_by_name():
    assert any(make_recipe(f, m) == FACE_RECIPE for f in FACE_CANDIDATES for m in MODEL_CANDIDATES)
    assert FACE_RECIPE.extraction.video_backend == FACE_RECIPE.face_features
    assert "face_model" in EXPERIMENTS and experiment("face_model").__name__ == "run_face_model"


def faces(n: int = 6, dim: int = 4) -> FaceSequences:
    """``n`` three-frame sequences of two subjects each; the last frame of sequence 0 has no face (NaN -> mask)."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"emotion": ["anger", "happiness", "sadness"] * (n // 3), "actor": [f"S{i % 2}" for i in range(n)]}
    )
    original = [(rng.normal(i, 1.0, (3, dim)).astype(np.float32), np.ones(3, bool)) for i in range(n)]
    original[0][0][2], original[0][1][2] = 0.0, False
    mirrored = [(frames + 100.0, mask) for frames, mask in original]
    return FaceSequences(table, original, mirrored)


def test_training_side_has_mirrors_and_training_statistics_only():
    data = faces()
    train_rows = np.array([True, True, True, True, False, False])
    train, validation, normaliser = training_sides(data, train_rows, ~train_rows)
    assert len(train) == 8 and len(validation) == 2
    assert list(train.labels[:4]) == list(train.labels[4:])  # each sequence and its mirror image
    assert train.video_dim == 4 and train.video_masks[0].tolist() == [True, True, False]
    assert not train.video[0][2].any()  # a faceless frame stays zero after normalisation
    frames = [frames[mask] for frames, mask in data.original[:4] + data.mirrored[:4]]
    np.testing.assert_allclose(normaliser.mean_, np.concatenate(frames).mean(axis=0), rtol=1e-5)


def test_video_data_labels_are_emotion_indices():
    data = faces(3)
    built = video_data(data.original, ["anger", "neutral", "sadness"], Normaliser("global").fit([np.ones((2, 4))]))
    assert built.labels.tolist() == [0, 4, 5] and built.audio_dim == 1
    with pytest.raises(ValueError):
        video_data(data.original, ["anger", "contempt", "sadness"], Normaliser("global").fit([np.ones((2, 4))]))


def test_candidates_are_scored_on_the_training_subjects_of_outer_fold_0_only(monkeypatch, tmp_path):
    from emotion_lib.experiments import face_model
    from emotion_lib.experiments.common import Context, actor_folds

    rng = np.random.default_rng(1)
    n = 60
    table = pd.DataFrame(
        {"emotion": ["anger", "happiness", "sadness"] * (n // 3), "actor": [f"S{i % 20:02d}" for i in range(n)]}
    )
    items = [(rng.normal(size=(3, 4)).astype(np.float32), np.ones(3, bool)) for _ in range(n)]
    sequences = FaceSequences(table, items, items)
    monkeypatch.setattr(face_model, "face_sequences", lambda ctx, features: sequences)
    seen = []

    class Seen(Exception):
        pass

    def spy(config, faces, folds, seed):
        seen.append((faces, folds))
        raise Seen

    monkeypatch.setattr(face_model, "cross_validate", spy)
    with pytest.raises(Seen):
        face_model.selection_rows(Context(metrics_path=tmp_path / "m.json"))
    faces, inner = seen[0]
    outer = actor_folds("ckplus", sequences.subjects, n_folds=5)
    held_out = set(outer[face_model.SELECTION_FOLD])
    assert held_out and not held_out & set(faces.subjects)
    assert len(inner) == 4 and sorted(s for fold in inner for s in fold) == sorted(set(sequences.subjects) - held_out)
    rows = np.flatnonzero(~np.isin(sequences.subjects, list(held_out)))
    assert faces.labels.tolist() == sequences.labels[rows].tolist()
    assert all(a[0] is b[0] for a, b in zip(faces.original, [sequences.original[i] for i in rows]))
