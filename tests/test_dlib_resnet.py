"""The Keras port of dlib's face-recognition ResNet: parsed from dlib's own file, equal to dlib's descriptors."""

from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest
from test_features_media import face_frame

from emotion_lib.features import dlib_resnet
from emotion_lib.features.dlib_resnet import DlibModelError, DlibResnet, default_model_path, load_weights, parse_model
from emotion_lib.features.video import FaceAligner, iter_frames

TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> DlibResnet:
    return DlibResnet(cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def dlib_net():
    return dlib.face_recognition_model_v1(str(default_model_path()))


@pytest.fixture(scope="module")
def aligner() -> FaceAligner:
    return FaceAligner(dlib_resnet.CHIP_SIZE, 0.25)


def compare(port: DlibResnet, dlib_net, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Both networks' descriptors of ``chips``; asserts they agree within TOLERANCE and reports the gap."""
    reference = np.asarray(dlib_net.compute_face_descriptor(chips), dtype=np.float32)
    ported = port(chips)
    gap = float(np.abs(ported - reference).max())
    print(f"max |keras - dlib| over {len(chips)} chips: {gap:.2e}")
    assert ported.shape == reference.shape == (len(chips), dlib_resnet.EMBEDDING_DIM)
    assert gap < TOLERANCE
    return ported, reference


def nearest_neighbours(embeddings: np.ndarray) -> np.ndarray:
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return distances.argmin(axis=1)


def test_parser_reads_every_layer_of_the_shipped_model():
    weights = parse_model(default_model_path())
    kernels = [name for name in weights if name.endswith(".kernel")]
    assert len(kernels) == 30  # 29 convolutions + the final fc
    np.testing.assert_allclose(weights["input.mean"], [122.782, 117.001, 104.298], atol=1e-3)
    first, last = weights[kernels[0]], weights[kernels[-1]]
    assert first.shape == (7, 7, 3, 32) and last.shape == (256, 128)
    assert sum(value.size for value in weights.values()) > 5_000_000
    assert all(np.isfinite(value).all() for value in weights.values())


def test_matches_dlib_on_synthetic_faces(port, dlib_net, aligner):
    chips = [aligner.chip(face_frame(actor, 300)) for actor in range(3)]
    assert all(chip is not None for chip in chips)
    ported, reference = compare(port, dlib_net, chips)
    assert np.linalg.norm(ported[0] - ported[1]) > 0.05  # different drawn actors, different vectors


def test_matches_dlib_on_real_faces(port, dlib_net, aligner, ravdess_faces_dir, ckplus_dir):
    """RAVDESS actor-01 chips (aligned from video) plus CK+ faces of three subjects (48x48 crops, resized)."""
    chips = []
    for clip in sorted(ravdess_faces_dir.glob("Actor_01/*.mp4"))[:3]:
        frames = [frame for _, frame in iter_frames(clip, fps=2)][:3]
        chips += [chip for chip in map(aligner.chip, frames) if chip is not None]
    n_ravdess = len(chips)
    assert n_ravdess >= 6
    subjects = []
    for subject in ("S011", "S132", "S138"):
        for path in sorted(ckplus_dir.glob(f"*/{subject}_*.png"))[:4]:
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            chips.append(cv2.cvtColor(cv2.resize(grey, (150, 150), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB))
            subjects.append(subject)
    assert len(subjects) == 12
    ported, reference = compare(port, dlib_net, chips)
    np.testing.assert_array_equal(nearest_neighbours(ported), nearest_neighbours(reference))
    ported_distances = np.linalg.norm(ported[:, None] - ported[None], axis=-1)
    reference_distances = np.linalg.norm(reference[:, None] - reference[None], axis=-1)
    np.testing.assert_allclose(ported_distances, reference_distances, atol=TOLERANCE)


def test_weights_are_parsed_once_and_cached(tmp_path, monkeypatch):
    first = load_weights(cache_dir=tmp_path)
    cached = list((tmp_path / "models").glob("dlib_resnet_*.npz"))
    assert len(cached) == 1

    def no_parse(path):
        raise AssertionError("the cached weights should have been used")

    monkeypatch.setattr(dlib_resnet, "parse_model", no_parse)
    second = load_weights(cache_dir=tmp_path)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[name], second[name]) for name in first)


def corrupt_copy(tmp_path: Path, edit) -> Path:
    path = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    path.write_bytes(edit(default_model_path().read_bytes()))
    return path


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda data: data[: len(data) // 2], "unexpected end of file"),
        (lambda data: data.replace(b"con_4", b"cxn_4", 1), "expected con_4"),
        (lambda data: data[:-1], "unexpected end of file"),
        (lambda data: data + b"\x00", "trailing bytes"),
        (lambda data: b"not a dlib model at all", "invalid integer control byte"),
        (lambda data: b"", "unexpected end of file"),
    ],
    ids=["truncated-half", "renamed-layer", "last-byte-missing", "trailing-byte", "text-file", "empty"],
)
def test_corrupt_model_files_give_a_clear_error_naming_the_file(tmp_path, edit, message):
    path = corrupt_copy(tmp_path, edit)
    with pytest.raises(DlibModelError, match=message) as raised:
        load_weights(path, cache_dir=tmp_path / "cache")
    assert str(path) in str(raised.value)
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(DlibModelError, match="not found") as raised:
        load_weights(tmp_path / "absent.dat", cache_dir=tmp_path)
    assert "absent.dat" in str(raised.value)
