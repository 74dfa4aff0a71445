"""The notebook's live demo with ipywebrtc capturing the camera and the microphone.

Two ``CameraStream`` widgets open the browser's camera (video only) and microphone (audio only: a
``MediaRecorder`` on a shared audio+video stream records no audio). An ``ImageRecorder`` takes snapshots
of the camera and an ``AudioRecorder`` records the microphone in short webm/Opus chunks. The kernel drives
both, without a blocking loop: a snapshot arriving asks for the next one (no sooner than ``capture_fps``
allows, so a slow kernel lowers the frame rate instead of piling up a backlog), and the frames are the clock
that ends each audio chunk, which is decoded to 16 kHz mono with ffmpeg. Frames and samples go to a
display-only :class:`~emotion_lib.realtime.widget.LiveEmotionWidget`, whose kernel-side loop (one
:class:`~emotion_lib.realtime.predictor.StreamingPredictor`) and display (label, confidence bars,
probabilities over time, Start/Stop) are the ones of the anywidget capture.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Any

import ipywidgets
import numpy as np

from emotion_lib.features.audio import load_audio
from emotion_lib.realtime.predictor import SAMPLE_RATE, Prediction, StreamingPredictor
from emotion_lib.realtime.widget import LiveEmotionWidget, decode_image


def decode_audio_chunk(data: bytes, audio_format: str = "webm") -> np.ndarray:
    """An ``AudioRecorder`` recording (webm/Opus by default) as float32 mono samples at 16 kHz (via ffmpeg).

    Raises:
        AudioError: the bytes are empty or ffmpeg cannot decode them.
    """
    with tempfile.TemporaryDirectory(prefix="emotion-webrtc-") as folder:
        path = Path(folder) / f"microphone.{audio_format}"
        path.write_bytes(bytes(data))
        return load_audio(path, SAMPLE_RATE)


def _call_later(delay_s: float, callback: Callable[[], None]) -> None:
    """Run ``callback`` after ``delay_s`` on the kernel's event loop; at once when there is no running loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        callback()
        return
    loop.call_later(max(0.0, delay_s), callback)


class WebRTCLiveDemo(ipywidgets.HBox):
    """The camera's view next to a display-only :class:`LiveEmotionWidget`, fed by ipywebrtc recorders.

    Start (or ``autostart``) opens the camera and the microphone; Stop (or :meth:`stop`) closes them and
    releases the devices. ``audio_chunk_s`` is the length of each microphone recording: longer chunks
    lose less audio between recordings, shorter ones reach the predictor sooner. ``image_format`` is the
    snapshot format (``"jpeg"`` or ``"png"``).
    """

    def __init__(
        self,
        predictor: StreamingPredictor | None,
        *,
        autostart: bool = False,
        capture_fps: float = 10.0,
        audio_chunk_s: float = 1.0,
        image_format: str = "jpeg",
        **panel_kwargs: Any,
    ) -> None:
        self.panel = LiveEmotionWidget(
            predictor, browser_capture=False, autostart=autostart, capture_fps=capture_fps, **panel_kwargs
        )
        super().__init__([self.panel])
        self.audio_chunk_s = float(audio_chunk_s)
        self.image_format = image_format
        self.camera: Any = None
        self.microphone: Any = None
        self.image_recorder: Any = None
        self.audio_recorder: Any = None
        self._started = 0.0
        self._requested = 0.0
        self._audio_started: float | None = None
        self.panel.observe(self._on_running, "running")

    @property
    def history(self) -> list[Prediction]:
        """The latest predictions (as the panel keeps them)."""
        return self.panel.history

    @property
    def latencies_s(self) -> list[float]:
        """The kernel's time per sampled frame, in seconds."""
        return self.panel.latencies_s

    def start(self) -> None:
        """Open the camera and the microphone and start predicting (the same as the Start button)."""
        self.panel.running = True

    def stop(self) -> None:
        """Close the camera and the microphone (the same as the Stop button)."""
        self.panel.stop()

    def _on_running(self, change: dict) -> None:
        if change["new"]:
            self._open()
        else:
            self._close()

    def _open(self) -> None:
        from ipywebrtc import AudioRecorder, CameraStream, ImageRecorder

        self._close()
        if self.panel.predictor is None:
            return
        width = self.panel.frame_width  # the anywidget capture's frame size too: faces are found fast enough
        video = {"width": width, "height": round(width * 3 / 4)}
        self.camera = CameraStream(constraints={"audio": False, "video": video})
        self.microphone = CameraStream(constraints={"audio": True, "video": False})
        self.image_recorder = ImageRecorder(stream=self.camera, format=self.image_format)
        self.audio_recorder = AudioRecorder(stream=self.microphone, format="webm")
        self.image_recorder.observe(self._on_snapshot, "recording")
        self.audio_recorder.audio.observe(self._on_audio_chunk, "value")
        self.children = [self.camera, self.panel]
        self.panel.status = "waiting for the camera and microphone (allow access in the browser)"
        self._started = monotonic()
        self._audio_started = None  # set by the first frame: the microphone may open later than this
        self.audio_recorder.recording = True
        self._request_snapshot()

    def _close(self) -> None:
        widgets = (self.image_recorder, self.audio_recorder, self.camera, self.microphone)
        self.camera = self.microphone = self.image_recorder = self.audio_recorder = None
        self.children = [self.panel]
        for widget in widgets:
            if widget is not None:
                widget.close()  # a closed CameraStream stops its tracks in the browser

    def _request_snapshot(self) -> None:
        if self.image_recorder is not None:
            self._requested = monotonic()
            self.image_recorder.recording = True

    def _on_snapshot(self, change: dict) -> None:
        """The browser ends a snapshot by setting ``recording`` back to False, after the image's bytes."""
        recorder = self.image_recorder
        if change["new"] or recorder is None or change["owner"] is not recorder:
            return
        with self.panel.reporting_errors():
            now = monotonic()
            if self._audio_started is None:  # the devices are open: the first audio chunk lasts from now
                self._audio_started = now
            elif now - self._audio_started >= self.audio_chunk_s and self.audio_recorder.recording:
                self.audio_recorder.recording = False  # the browser sends the chunk, then a new one starts
            self.panel.process_frame(decode_image(recorder.image.value), now - self._started)
        wait = 1.0 / self.panel.capture_fps - (monotonic() - self._requested)
        _call_later(wait, self._request_snapshot)

    def _on_audio_chunk(self, change: dict) -> None:
        recorder = self.audio_recorder
        if recorder is None or change["owner"] is not recorder.audio:
            return
        self._audio_started = monotonic()
        recorder.recording = True  # the next chunk first, so the gap between recordings stays short
        if not change["new"]:
            self.panel.status = "the microphone recorded nothing: face only"
            return
        with self.panel.reporting_errors():
            self.panel.feed_audio(decode_audio_chunk(change["new"]), SAMPLE_RATE)


def webrtc_available() -> bool:
    """ipywebrtc can be imported (its browser side ships with the Python package)."""
    try:
        import ipywebrtc  # noqa: F401
    except ImportError:
        return False
    return True


CAPTURES = ("ipywebrtc", "anywidget")
"""The in-notebook camera captures: ipywebrtc's recorders, or the anywidget's own ``getUserMedia`` capture."""


def live_demo(
    predictor: StreamingPredictor | None, capture: str = "", **kwargs: Any
) -> WebRTCLiveDemo | LiveEmotionWidget:
    """The live demo widget for ``capture`` (one of :data:`CAPTURES`; empty: ipywebrtc when importable).

    Both have ``history``, ``latencies_s`` and ``stop()``; keyword arguments go to the widget
    (``autostart``, ``capture_fps``, ...).
    """
    capture = capture or ("ipywebrtc" if webrtc_available() else "anywidget")
    if capture not in CAPTURES:
        raise ValueError(f"unknown capture {capture!r}; expected one of {', '.join(CAPTURES)}")
    if capture == "ipywebrtc":
        if not webrtc_available():
            raise ImportError("capture='ipywebrtc' needs the ipywebrtc package (pip install ipywebrtc)")
        return WebRTCLiveDemo(predictor, **kwargs)
    return LiveEmotionWidget(predictor, **kwargs)
