"""Camera and microphone access for the real-time app."""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

from emotion_lib.realtime.predictor import SAMPLE_RATE


class DemoError(RuntimeError):
    """A problem the user can fix (no camera, camera denied, missing model, bad file): printed without a traceback."""


def _camera_problem(index: int) -> str:
    """Explain why camera ``index`` did not open: absent, or present but not accessible."""
    devices = sorted(glob.glob("/dev/video*"))
    if sys.platform.startswith("linux") and not devices:
        return "no camera found (no /dev/video* device). Use --source FILE to run on a video file."
    denied = [d for d in devices if not os.access(d, os.R_OK | os.W_OK)]
    if denied:
        return (
            f"camera access denied: no permission on {', '.join(denied)} "
            "(add yourself to the 'video' group, or use --source FILE)."
        )
    return (
        f"camera {index} could not be opened: it may be missing, in use by another program, or access was denied "
        "(on macOS allow camera access for the terminal under System Settings > Privacy & Security > Camera). "
        "Use --source FILE to run on a video file."
    )


def open_camera(index: int = 0) -> Iterator[tuple[np.ndarray, float, None]]:
    """Open webcam ``index`` now (raising :class:`DemoError` if it cannot) and return its frame stream."""
    import cv2

    quiet = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our message replaces OpenCV's
    try:
        cap = cv2.VideoCapture(index)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones, when we fall behind
        ok, frame = cap.read() if cap.isOpened() else (False, None)
    finally:
        cv2.utils.logging.setLogLevel(quiet)
    if not ok:
        cap.release()
        raise DemoError(_camera_problem(index))
    return _camera_frames(cap, frame)


def _camera_frames(cap, frame: np.ndarray) -> Iterator[tuple[np.ndarray, float, None]]:
    """Yield (BGR frame, monotonic time, None) until the camera stops."""
    try:
        ok = True
        while ok:
            yield frame, time.monotonic(), None
            ok, frame = cap.read()
    finally:
        cap.release()


class Microphone:
    """Microphone samples through sounddevice, handed to ``on_audio`` (e.g. :meth:`AudioFeeder.put`) as they come."""

    def __init__(self, on_audio: Callable[[np.ndarray], None], sample_rate: int = SAMPLE_RATE) -> None:
        self.error = ""
        self._stream = None
        try:
            import sounddevice as sd

            self._stream = sd.InputStream(
                samplerate=sample_rate, channels=1, dtype="float32", callback=lambda d, *_: on_audio(d[:, 0].copy())
            )
            self._stream.start()
        except Exception as exc:  # no PortAudio, no device, permission: the demo goes on with the face only
            self.error = f"microphone unavailable ({exc}); continuing with the face only"

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
