"""Replaying a recorded clip through the streaming predictor (audio feeder, clip stream)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emotion_lib.data.corpora import load_corpus
from emotion_lib.paths import SAMPLE_CLIP, corpus_dir
from emotion_lib.realtime.predictor import SAMPLE_RATE, Prediction, StreamingPredictor


class AudioFeeder:
    """Feeds microphone audio to :meth:`StreamingPredictor.push_audio` from a background thread.

    openSMILE releases the GIL while it analyses a hop, so the voice descriptors are computed while the main
    thread embeds the next face, and a frame's latency does not include them. ``put`` never blocks;
    ``flush`` waits until everything queued has been analysed; errors are kept in ``error``.
    """

    def __init__(self, predictor: StreamingPredictor, sample_rate: int = SAMPLE_RATE) -> None:
        self.predictor, self.sample_rate, self.error = predictor, int(sample_rate), ""
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audio-features", daemon=True)
        self._thread.start()

    def put(self, samples: np.ndarray) -> None:
        self._queue.put(np.array(samples, dtype=np.float32))

    def _run(self) -> None:
        while True:
            samples = self._queue.get()
            try:
                if samples is None:
                    return
                self.predictor.push_audio(samples, self.sample_rate)
            except Exception as exc:  # kept for the display; the thread goes on with the next chunk
                self.error = f"audio: {type(exc).__name__}: {exc}"
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


def clip_stream(
    path: str | Path, audio_path: str | Path | None = None
) -> Iterator[tuple[np.ndarray, float, np.ndarray | None]]:
    """Replay a video file like a camera: ``(BGR frame, time s, audio samples for that frame at 16 kHz)``.

    Every frame is yielded at the file's own rate with the slice of audio up to the next frame, so a
    recorded clip drives :meth:`StreamingPredictor.update` exactly as a webcam and microphone would. The
    audio comes from ``audio_path`` (e.g. CREMA-D's separate WAV) or else the video's own audio track; a
    clip without readable audio yields ``None`` audio (the face alone).
    """
    import cv2

    from emotion_lib.features.audio import AudioError, load_audio
    from emotion_lib.features.video import VideoError, source_fps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        audio: np.ndarray | None = load_audio(audio_path if audio_path is not None else path)
    except AudioError:
        if audio_path is not None:
            raise
        audio = None
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this video (corrupt file or unsupported codec)")
    fps = source_fps(capture)
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            start, stop = (int(round(k / fps * SAMPLE_RATE)) for k in (index, index + 1))
            yield frame, index / fps, None if audio is None else audio[start:stop]
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise VideoError(f"{path}: no decodable video frame")


def run_clip(predictor: StreamingPredictor, path: str | Path, audio_path: str | Path | None = None) -> list[Prediction]:
    """Stream a recorded clip through ``predictor`` (reset first); returns every prediction update."""
    predictor.reset()
    updates = []
    for frame, timestamp, audio in clip_stream(path, audio_path):
        prediction = predictor.update(frame, timestamp, audio)
        if prediction is not None:
            updates.append(prediction)
    return updates


def demo_clip(
    clip: str | Path = "", model_path: str | Path = "", corpus: str = "synthetic", data_dir: str = "", seed: int = 0
) -> tuple[Path, Path | None, str | None]:
    """The recorded clip a demo replays, its separate audio file (if any) and its label (if known).

    Args:
        clip: a video file; empty for the default below.
        model_path: the demo's model parameter: with ``"synthetic"`` (notebook 04's model) the default clip is one
            video of ``corpus`` drawn with ``seed``, else the real sample :data:`~emotion_lib.paths.SAMPLE_CLIP`.
        corpus, data_dir, seed: the corpus to draw from (see :func:`~emotion_lib.paths.corpus_dir`).

    Raises:
        ValueError: the corpus has no video clip to draw.
    """
    if clip:
        return Path(clip), None, None
    if str(model_path) != "synthetic":
        clips, _ = load_corpus("crema-d", SAMPLE_CLIP.parent.parent)
        row = clips[clips["clip_id"] == SAMPLE_CLIP.stem].iloc[0]
        return SAMPLE_CLIP, None, row["emotion"]
    clips, _ = load_corpus(corpus, corpus_dir(corpus, data_dir))
    with_video = clips[clips["video_path"].notna()]
    if with_video.empty:
        raise ValueError(f"the {corpus} corpus has no video clips: set the clip parameter to a video file")
    row = with_video.sample(1, random_state=seed).iloc[0]
    return (
        Path(row["video_path"]),
        Path(row["audio_path"]) if isinstance(row["audio_path"], str) else None,
        row["emotion"],
    )
