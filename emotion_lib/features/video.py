"""Frame sampling, face detection and alignment: the video side shared by every face backend.

:func:`iter_frames` samples a video at a fixed rate; :class:`FaceAligner` finds the largest face and cuts an aligned
chip; :func:`embed_video` streams a video through a face backend (:mod:`emotion_lib.features.faces`), whose
``embed(frames)`` gives ``(embeddings (T, D), mask (T,))``: a frame without a face keeps its row (zeros) with
``mask=False``; with several faces the largest is used.

Detection runs on a grey frame downscaled to ``detect_width`` pixels; landmarks and crops use the full frame.
With ``coarse_first`` (the default) the HOG detector first runs without upsampling (~1/4 of the cost; finds
faces from ~80 px in the downscaled frame) and reruns with ``upsample`` only on frames where it found no face,
so small faces are still found.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import cv2
import dlib
import numpy as np

from emotion_lib.features.audio import check_media_file, warn_if_truncated

DEFAULT_FPS = 5.0


class VideoError(ValueError):
    """A clip's video cannot be read; the message names the file."""


class FrameEmbedder(Protocol):
    """Anything that embeds a batch of frames: a face backend (:class:`~emotion_lib.features.faces.FaceBackend`)."""

    def embed(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (T, D), mask (T,))`` of ``frames``."""


def source_fps(capture: cv2.VideoCapture) -> float:
    """The capture's frame rate, or 30 frames/s when the container does not give a plausible one."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if np.isfinite(fps) and 1.0 <= fps <= 240.0 else 30.0


def iter_frames(path: Path | str, fps: float = DEFAULT_FPS) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, frame)`` pairs sampled at ``fps`` from a video; frames are BGR uint8 ``(H, W, 3)``.

    Frames between samples are only grabbed, not decoded to images. A truncated file yields the frames
    before the damage, with a :class:`~emotion_lib.features.audio.MediaWarning` when they are far fewer than the
    container declares; a file with no decodable frame raises :class:`VideoError`.
    """
    path = Path(path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    check_media_file(path, "video", VideoError)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open the video (corrupt file or unsupported codec)")
        rate, index, sample, produced = source_fps(capture), 0, 0, 0
        while capture.grab():
            time = index / rate
            index += 1
            if time + 0.5 / rate < sample / fps:
                continue
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                break
            while sample / fps <= time + 0.5 / rate:
                sample += 1
            produced += 1
            yield time, _as_bgr(frame)
        if produced == 0:
            raise VideoError(f"{path}: no decodable video frame (corrupt, truncated or audio-only file)")
        declared = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        warn_if_truncated(path, index / rate, declared / rate if np.isfinite(declared) else None, "video")
    finally:
        capture.release()


def read_frames(path: Path | str, fps: float = DEFAULT_FPS) -> tuple[np.ndarray, np.ndarray]:
    """All frames sampled at ``fps``: ``(frames (T, H, W, 3) uint8 BGR, times (T,) seconds)``."""
    times, frames = zip(*iter_frames(path, fps))
    return np.stack(frames), np.asarray(times, dtype=np.float64)


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """Greyscale (H, W) or (H, W, 1) and BGRA frames become BGR uint8."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class FaceAligner:
    """Finds the largest face (dlib HOG on a downscaled grey frame) and cuts an aligned RGB chip (5 landmarks).

    ``upsample`` is the HOG detector's upsampling count; with ``coarse_first`` a frame is first searched without
    upsampling and only searched again with ``upsample`` when that finds no face.
    """

    def __init__(
        self, chip_size: int, padding: float, detect_width: int = 320, upsample: int = 1, coarse_first: bool = True
    ) -> None:
        import face_recognition_models

        self.chip_size, self.padding, self.detect_width, self.upsample = chip_size, padding, detect_width, upsample
        self.coarse_first = coarse_first
        self._upsample_levels = [0, upsample] if coarse_first and upsample > 0 else [upsample]
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())

    def config(self) -> dict:
        return {
            "detector": "dlib-hog",
            "detect_width": self.detect_width,
            "upsample": self.upsample,
            "coarse_first": self.coarse_first,
            "landmarks": 5,
            "chip_size": self.chip_size,
            "padding": self.padding,
            "dlib": dlib.__version__,
        }

    def largest_face(self, frame: np.ndarray) -> dlib.rectangle | None:
        """The largest detected face in full-frame coordinates, or ``None``."""
        grey = cv2.cvtColor(_as_bgr(frame), cv2.COLOR_BGR2GRAY)
        scale = min(1.0, self.detect_width / grey.shape[1])
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
        faces = []
        for upsample in self._upsample_levels:
            faces = self._detector(small, upsample)
            if len(faces):
                break
        if len(faces) == 0:
            return None
        best = max(faces, key=lambda r: r.width() * r.height())
        return dlib.rectangle(
            int(best.left() / scale), int(best.top() / scale), int(best.right() / scale), int(best.bottom() / scale)
        )

    def chip(self, frame: np.ndarray) -> np.ndarray | None:
        """The aligned ``(chip_size, chip_size, 3)`` RGB face chip of the largest face, or ``None``."""
        box = self.largest_face(frame)
        if box is None:
            return None
        rgb = np.ascontiguousarray(cv2.cvtColor(_as_bgr(frame), cv2.COLOR_BGR2RGB))
        return dlib.get_face_chip(rgb, self._landmarks(rgb, box), size=self.chip_size, padding=self.padding)


def embed_video(
    path: Path | str, backend: FrameEmbedder, fps: float = DEFAULT_FPS, chunk: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream a video through ``backend`` in chunks of frames: ``(embeddings (T, D), mask (T,), times (T,))``."""
    embeddings, masks, times, frames = [], [], [], []

    def flush() -> None:
        if frames:
            emb, mask = backend.embed(frames)
            embeddings.append(emb)
            masks.append(mask)
            frames.clear()

    for time, frame in iter_frames(path, fps):
        times.append(time)
        frames.append(frame)
        if len(frames) >= chunk:
            flush()
    flush()
    return np.concatenate(embeddings), np.concatenate(masks), np.asarray(times, dtype=np.float64)
