"""The real-time OpenCV emotion demo: webcam (or a video file) + microphone -> live label, bars and plot.

    realtime-emotion-demo --window_size 30 --display_width 800 --display_height 600
    realtime-emotion-demo --model reports/models/synthetic_fusion --source clip.mp4 --headless --output out.mp4

The model is the shipped real audio-visual model (``models/av``) unless ``--model`` names another. Without
``--source`` the webcam and microphone are used; when no webcam opens, the real sample clip
(``data/samples/crema-d/``) plays instead, with a note.

Press q or Esc in the window to quit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from emotion_lib.labels import EMOTIONS, colour_bgr
from emotion_lib.paths import SAMPLE_CLIP
from emotion_lib.realtime.devices import DemoError, Microphone, open_camera
from emotion_lib.realtime.predictor import Prediction, StreamingPredictor
from emotion_lib.realtime.replay import AudioFeeder, clip_stream
from emotion_lib.realtime.window import demo_model_path

_GREY = (127, 127, 127)
_WHITE = (255, 255, 255)
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


def draw_dashboard(
    frame: np.ndarray | None,
    prediction: Prediction | None,
    history: Sequence[np.ndarray],
    width: int = 800,
    height: int = 600,
) -> np.ndarray:
    """Render the camera image, the colour-coded label, six confidence bars and the probability plot."""
    import cv2

    canvas = np.full((height, width, 3), 245, np.uint8)
    plot_h = max(60, height // 4)
    top_h = height - plot_h
    cam_w = int(width * 0.6)
    if frame is not None:
        h, w = frame.shape[:2]
        scale = min(cam_w / w, top_h / h)
        resized = cv2.resize(frame, (max(1, int(w * scale)), max(1, int(h * scale))))
        canvas[: resized.shape[0], : resized.shape[1]] = resized
    x0, pad = cam_w + 10, 10
    panel_w = width - x0 - pad
    if prediction is None:
        cv2.putText(canvas, "waiting...", (x0, 40), _FONT, 0.8, _GREY, 2, cv2.LINE_AA)
    else:
        colour = colour_bgr(prediction.label)
        cv2.rectangle(canvas, (x0, pad), (x0 + panel_w, 60), colour, -1)
        text = f"{prediction.label} {prediction.confidence:.0%}"
        cv2.putText(canvas, text, (x0 + 8, 45), _FONT, 0.8, _WHITE, 2, cv2.LINE_AA)
        bar_top, bar_h = 80, max(12, min(30, (top_h - 120) // len(EMOTIONS) - 8))
        for i, (name, p) in enumerate(zip(EMOTIONS, prediction.probabilities)):
            y = bar_top + i * (bar_h + 8)
            cv2.putText(canvas, name, (x0, y + bar_h - 2), _FONT, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
            bx, bw = x0 + 85, panel_w - 125
            cv2.rectangle(canvas, (bx, y), (bx + bw, y + bar_h), (220, 220, 220), -1)
            cv2.rectangle(canvas, (bx, y), (bx + int(bw * float(p)), y + bar_h), colour_bgr(name), -1)
            cv2.putText(canvas, f"{p:.0%}", (bx + bw + 5, y + bar_h - 2), _FONT, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
        if prediction.message:
            y = bar_top + len(EMOTIONS) * (bar_h + 8) + 15
            cv2.putText(canvas, prediction.message, (x0, y), _FONT, 0.5, (0, 80, 200), 1, cv2.LINE_AA)
    _draw_plot(canvas, history, top_h + 5, height - 5, pad, width - pad)
    return canvas


def _draw_plot(canvas: np.ndarray, history: Sequence[np.ndarray], y0: int, y1: int, x0: int, x1: int) -> None:
    import cv2

    cv2.rectangle(canvas, (x0, y0), (x1, y1), (200, 200, 200), 1)
    cv2.putText(canvas, "probabilities over time", (x0 + 5, y0 + 14), _FONT, 0.4, (120, 120, 120), 1, cv2.LINE_AA)
    if len(history) < 2:
        return
    probs = np.asarray(history, dtype=np.float64)
    xs = np.linspace(x0, x1, probs.shape[0]).astype(np.int32)
    for c, name in enumerate(EMOTIONS):
        ys = (y1 - probs[:, c] * (y1 - y0)).astype(np.int32)
        cv2.polylines(canvas, [np.stack([xs, ys], axis=1)], False, colour_bgr(name), 2, cv2.LINE_AA)


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """The demo's options (``prog`` names the command in usage lines, e.g. ``python -m emotion_lib demo``)."""
    parser = argparse.ArgumentParser(prog=prog, description="Real-time voice + face emotion recognition demo.")
    parser.add_argument(
        "--model",
        default="",
        help="model bundle folder (or a bare .keras / .tflite model); default: the shipped real audio-visual model "
        "models/av; 'synthetic': notebook 04's model of the synthetic corpus",
    )
    parser.add_argument("--window_size", type=int, default=30, help="face-embedding frames in the sliding window")
    parser.add_argument("--display_width", type=int, default=800)
    parser.add_argument("--display_height", type=int, default=600)
    parser.add_argument(
        "--source", default=None, help="a video file instead of the webcam (default: the webcam, else the real sample)"
    )
    parser.add_argument("--camera", type=int, default=0, help="webcam index (default 0)")
    parser.add_argument(
        "--video_fps",
        type=float,
        default=None,
        help="face frames per second the model was trained on (default: the bundle's, else 5)",
    )
    parser.add_argument(
        "--face_backend",
        default=None,
        help="face backend the model was trained with: dlib, fer, facenet (default: the bundle's, else dlib)",
    )
    parser.add_argument("--smoothing", type=float, default=0.5, help="weight of the previous probabilities (0-1)")
    parser.add_argument("--headless", action="store_true", help="no window; needs --output")
    parser.add_argument("--output", default=None, help="write the rendered dashboard to this .mp4 (mp4v)")
    parser.add_argument("--max_frames", type=int, default=0, help="stop after this many frames (0 = no limit)")
    args = parser.parse_args(argv)
    if args.headless and not args.output:
        parser.error("--headless needs --output out.mp4")
    if args.window_size < 1:
        parser.error("--window_size must be at least 1")
    if args.output and args.source and _same_file(args.output, args.source):
        parser.error(f"--output {args.output} is the --source video itself: writing it would destroy the input")
    return args


def _same_file(first: str, second: str) -> bool:
    """Whether two paths name one file (through links or relative paths too)."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): compare the resolved paths
        return Path(first).resolve() == Path(second).resolve()


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the number of frames shown or written."""
    import cv2

    linux_without_display = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if not args.headless and linux_without_display:
        raise DemoError("no display to open a window on (DISPLAY is not set): use --headless --output out.mp4")
    predictor = _load_predictor(args)
    frames, mic, feeder = _open_source(args, predictor)
    output = _VideoOutput(args.output, (args.display_width, args.display_height), args.source)
    try:
        return _stream(args, predictor, frames, output)
    except ValueError as exc:  # an unreadable video, a model returning NaN...: a message, not a traceback
        raise DemoError(str(exc)) from exc
    finally:
        output.close()
        if mic is not None:
            mic.close()
        if feeder is not None:
            feeder.close()
        if not args.headless:
            cv2.destroyAllWindows()


def _load_predictor(args: argparse.Namespace) -> StreamingPredictor:
    """The predictor for ``--model``, its face backend loaded so that a mismatch fails before the camera opens."""
    try:
        predictor = StreamingPredictor.from_path(
            demo_model_path(args.model),
            args.window_size,
            video_fps=args.video_fps,
            smoothing=args.smoothing,
            face_backend=args.face_backend,
        )
        _ = predictor.face_backend
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # missing model, ModelInputError, no backend
        raise DemoError(str(exc)) from exc
    return predictor


def _open_source(
    args: argparse.Namespace, predictor: StreamingPredictor
) -> tuple[Iterator, Microphone | None, AudioFeeder | None]:
    """Frames from ``--source`` (a file, with its own audio), else the webcam with the microphone, else the sample."""
    if args.source is not None:
        if not Path(args.source).is_file():
            raise DemoError(f"video file not found: {args.source}")
        return clip_stream(args.source), None, None
    try:
        frames = open_camera(args.camera)
    except DemoError as exc:
        if args.output and _same_file(args.output, str(SAMPLE_CLIP)):
            raise DemoError(f"{exc}; and --output {args.output} is the sample clip that would play instead") from exc
        print(
            f"{exc}\nPlaying the real sample clip instead: {SAMPLE_CLIP} (use --source FILE for another)",
            file=sys.stderr,
        )
        args.source = str(SAMPLE_CLIP)
        return clip_stream(SAMPLE_CLIP), None, None
    # the microphone's descriptors are computed in a background thread, beside the face embedding
    feeder = AudioFeeder(predictor)
    mic = Microphone(feeder.put)
    if mic.error:
        print(mic.error, file=sys.stderr)
    return frames, mic, feeder


def _stream(args: argparse.Namespace, predictor: StreamingPredictor, frames: Iterator, output: _VideoOutput) -> int:
    """Predict, draw and show (or write) every frame; returns how many frames were shown."""
    import cv2

    history: deque[np.ndarray] = deque(maxlen=100)
    prediction: Prediction | None = None
    shown = 0
    pace = args.source is not None and not args.headless  # a file plays at its own speed in the window
    started = time.monotonic()
    for frame, timestamp, audio in frames:
        if pace:
            time.sleep(max(0.0, timestamp - (time.monotonic() - started)))
        new = predictor.update(frame, timestamp, audio)
        if new is not None:
            prediction = new
            history.append(new.probabilities)
        canvas = draw_dashboard(frame, prediction, history, args.display_width, args.display_height)
        output.write(canvas)
        if not args.headless:
            cv2.imshow("emotion demo (q to quit)", canvas)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                break
        shown += 1
        if args.max_frames and shown >= args.max_frames:
            break
    return shown


class _VideoOutput:
    """The ``--output`` video of the dashboard (nothing without it), opened at the first frame."""

    def __init__(self, path: str | None, size: tuple[int, int], source: str | None) -> None:
        self.path, self.size, self.source = path, size, source
        self.writer = None

    def write(self, canvas: np.ndarray) -> None:
        if self.path is None:
            return
        if self.writer is None:
            self.writer = _open_writer(self.path, self.size, self.source)
        self.writer.write(canvas)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _open_writer(path: str, size: tuple[int, int], source: str | None):
    """An mp4v writer at the source file's frame rate (30 frames/s for a webcam)."""
    import cv2

    from emotion_lib.features.video import source_fps

    fps = 30.0
    if source is not None:
        cap = cv2.VideoCapture(source)
        fps = source_fps(cap)
        cap.release()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
    if not writer.isOpened():
        raise DemoError(f"could not open {path} for writing (OpenCV writes .mp4 with the mp4v codec)")
    return writer


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the demo with command-line arguments ``argv``; returns a process exit status."""
    args = parse_args(argv, prog)
    try:
        shown = run(args)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    print(f"{shown} frames" + (f" written to {args.output}" if args.output else ""))
    return 0
