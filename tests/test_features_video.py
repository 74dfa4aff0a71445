"""Face backends: masks keep the timeline, the largest face wins, fer behaves as documented (facenet: test_facenet)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_features_media import face_frame, write_video

from emotion_lib.features.faces import FACE_BACKENDS, FaceBackend, FaceBackendSpec, get_face_backend
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.features.video import embed_video


@pytest.fixture(scope="module")
def dlib_backend():
    return get_face_backend("dlib")


def blank(size: int = 224) -> np.ndarray:
    return np.full((size, size, 3), 90, np.uint8)


def two_faces(big: int, small: int) -> np.ndarray:
    """A 224x448 frame: actor ``big``'s face at full size on the left, actor ``small``'s at 60 % on the right."""
    frame = np.full((224, 448, 3), 70, np.uint8)
    frame[:, :224] = face_frame(big)
    frame[45:179, 269:403] = face_frame(small, 134)
    return frame


def test_dlib_masks_faceless_frames_in_place(dlib_backend):
    embeddings, mask = dlib_backend.embed([face_frame(0), blank(), face_frame(1), blank()])
    assert embeddings.shape == (4, 128) and embeddings.dtype == np.float32
    assert mask.tolist() == [True, False, True, False]
    assert not embeddings[~mask].any() and (np.abs(embeddings[mask]).sum(axis=1) > 0).all()
    assert np.linalg.norm(embeddings[0] - embeddings[2]) > 0.05  # two different actors, two different vectors


def test_dlib_picks_the_largest_face(dlib_backend):
    for big, small in ((0, 1), (1, 0)):  # the big face is always the left one (x < 224), the small one right
        assert dlib_backend.aligner.largest_face(two_faces(big, small)).center().x < 224
    alone_big, _ = dlib_backend.embed([face_frame(0)])
    alone_small, _ = dlib_backend.embed([face_frame(1)])
    both, mask = dlib_backend.embed([two_faces(0, 1)])
    assert mask.all()
    assert np.linalg.norm(both - alone_big) < 0.75 * np.linalg.norm(both - alone_small)
    swapped, _ = dlib_backend.embed([two_faces(1, 0)])
    assert np.linalg.norm(swapped - alone_small) < 0.75 * np.linalg.norm(swapped - alone_big)


def test_small_faces_fall_back_to_upsampling():
    """A 70-px face in a 320-px frame is below the HOG window without upsampling: coarse_first retries."""
    frame = np.full((320, 320, 3), 90, np.uint8)
    frame[120:190, 120:190] = face_frame(0, 70)
    coarse_only = get_face_backend("dlib", upsample=0).aligner
    assert coarse_only.largest_face(frame) is None
    for coarse_first in (True, False):
        aligner = get_face_backend("dlib", coarse_first=coarse_first).aligner
        box = aligner.largest_face(frame)
        assert box is not None and 100 < box.center().x < 210 and 100 < box.center().y < 210
        assert aligner.config()["coarse_first"] is coarse_first


def test_dlib_accepts_greyscale_frames(dlib_backend):
    grey = cv2.cvtColor(face_frame(0), cv2.COLOR_BGR2GRAY)
    embeddings, mask = dlib_backend.embed([grey, grey[..., None]])
    assert mask.all() and np.allclose(embeddings[0], embeddings[1])


def test_embed_video_streams_in_chunks(tmp_path, dlib_backend):
    frames = [face_frame(0)] * 4 + [blank()] * 3 + [face_frame(0)] * 3
    path = write_video(tmp_path / "clip.mp4", frames, fps=10)
    embeddings, mask, times = embed_video(path, dlib_backend, fps=10, chunk=3)
    assert mask.tolist() == [True] * 4 + [False] * 3 + [True] * 3
    np.testing.assert_allclose(times, np.arange(10) / 10, atol=1e-6)
    whole, whole_mask, _ = embed_video(path, dlib_backend, fps=10, chunk=32)
    np.testing.assert_array_equal(mask, whole_mask)
    np.testing.assert_allclose(embeddings, whole, atol=1e-6)  # TensorFlow's batch size moves the last float bits


def test_real_face_crops_are_detected(ravdess_faces_dir, dlib_backend):
    clip = sorted(ravdess_faces_dir.glob("Actor_01/*.mp4"))[0]
    embeddings, mask, times = embed_video(clip, dlib_backend, fps=5)
    assert len(mask) >= 5 and mask.mean() >= 0.8
    assert np.isfinite(embeddings).all()


@pytest.mark.parametrize("output,dim", [("probabilities", 7), ("features", 128)])
def test_fer_backend(output, dim):
    backend = get_face_backend("fer", output=output)
    embeddings, mask = backend.embed([face_frame(0), blank(), face_frame(2)])
    assert embeddings.shape == (3, dim) and mask.tolist() == [True, False, True]
    assert not embeddings[1].any()
    if output == "probabilities":
        np.testing.assert_allclose(embeddings[mask].sum(axis=1), 1.0, atol=1e-4)
        assert (embeddings[mask] >= 0).all()
    else:
        assert np.abs(embeddings[mask]).sum() > 0


def test_unknown_backend_and_fer_output():
    with pytest.raises(ValueError, match="unknown face backend 'openface'; expected one of dlib, fer, facenet"):
        get_face_backend("openface")
    with pytest.raises(ValueError, match="fer output"):
        get_face_backend("fer", output="logits")
    with pytest.raises(ValueError, match="unknown face backend 'openface'"):
        ExtractionConfig(video_backend="openface")


def test_options_a_backend_does_not_accept_are_refused():
    with pytest.raises(ValueError, match="'dlib' does not accept option\\(s\\) output; it accepts: detect_width"):
        get_face_backend("dlib", output="features")
    with pytest.raises(ValueError, match="'fer' does not accept option\\(s\\) weights; it accepts: output"):
        ExtractionConfig(video_backend="fer", backend_options={"weights": "w.pt"})
    with pytest.raises(ValueError, match="without a video_backend"):
        ExtractionConfig(video_backend=None, backend_options={"output": "features"})


class MeanColour(FaceBackend):
    """A test backend: the mean RGB colour of the aligned chip, scaled by ``gain``."""

    name, dim = "mean-colour", 3

    def __init__(self, gain: float = 1.0, **detection) -> None:
        super().__init__(**detection)
        self.gain = gain

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        return self.gain * np.stack([chip.reshape(-1, 3).mean(axis=0) for chip in chips]).astype(np.float32)


def test_a_registered_backend_is_usable_by_name_and_keys_the_cache(monkeypatch):
    monkeypatch.setitem(FACE_BACKENDS, "mean-colour", FaceBackendSpec(MeanColour, ("numpy",), ("gain",)))
    embeddings, mask = get_face_backend("mean-colour", gain=2.0, detect_width=224).embed([face_frame(0), blank()])
    assert embeddings.shape == (2, 3) and mask.tolist() == [True, False] and embeddings[0].min() > 2.0
    default, doubled = (
        ExtractionConfig(video_backend="mean-colour", backend_options=options) for options in ({}, {"gain": 2.0})
    )
    assert default.key() == ExtractionConfig(video_backend="mean-colour", backend_options={"gain": 1.0}).key()
    assert default.key() != doubled.key() and "numpy" in default.versions()
