"""Real-time demo speed: frames/s and frame-arrival -> updated-prediction latency on this CPU.

A real RAVDESS audio-video clip (1280x720, 30 fps, from ../shared/data; the synthetic corpus otherwise) is
replayed as a 640-pixel-wide webcam with its own audio through :class:`emotion_lib.realtime.StreamingPredictor`
(faces sampled at the model's 5 frames/s, openSMILE LLDs on 0.2 s hops), with the Keras model and with the
fastest TFLite export:

* ``throughput``: camera frames processed per second, fed as fast as possible;
* ``paced``: frames arrive in real time and audio is analysed in an ``AudioFeeder`` thread, as in the app;
  latency = frame arrival -> updated prediction (median, p95), including any wait behind earlier frames;
* ``naive_baseline`` (same run): every camera frame embedded, openSMILE over the whole window's audio and
  ``model.predict`` at every frame;
* ``components``: face detection + alignment + embedding, one openSMILE hop; ``model``: one window for Keras
  and each TFLite export (float32, float16, int8).

Targets: >= 15 frames/s, p95 latency <= 150 ms, <= 5 ms per window with TFLite. The machine's load average
is recorded: the 2 cores are shared, and figures measured under load are slower than on an idle machine.
Writes reports/benchmarks/realtime.json.

    .venv/bin/python benchmarks/realtime.py [--loops 3] [--window_size 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.paths import BENCHMARKS_DIR, SYNTHETIC_DIR, shared_data_dir
from emotion_lib.realtime.predictor import SAMPLE_RATE, StreamingPredictor
from emotion_lib.realtime.replay import AudioFeeder, clip_stream
from emotion_lib.realtime.window import WindowModel

OUT = BENCHMARKS_DIR / "realtime.json"
CAMERA_WIDTH = 640


def pick_clip() -> tuple[Path, str]:
    real = shared_data_dir() / "ravdess-video" / "Actor_01" / "01-01-01-01-01-01-01.mp4"
    if real.is_file():
        return real, "RAVDESS actor 01, 1280x720 30 fps (real)"
    synthetic = sorted((SYNTHETIC_DIR / "VideoMP4").glob("*.mp4"))
    if not synthetic:
        raise SystemExit("no clip: ../shared/data is absent and data/synthetic is empty (run `make data`)")
    return synthetic[0], "synthetic corpus (drawn face)"


def camera_frames(clip: Path) -> list[tuple[np.ndarray, float, np.ndarray | None]]:
    """The clip decoded once and resized to a webcam-like width, so decoding is not timed."""
    import cv2

    frames = []
    for frame, t, audio in clip_stream(clip):
        scale = CAMERA_WIDTH / frame.shape[1]
        frames.append((cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), t, audio))
    return frames


def percentiles(values_s: list[float]) -> dict:
    ms = 1000 * np.asarray(values_s)
    return {
        "median_ms": round(float(np.median(ms)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "n": int(ms.size),
    }


def run_throughput(model, frames, window_size: int, fps: float) -> dict:
    """Camera frames processed per second when fed as fast as possible (audio analysed inline)."""
    predictor = StreamingPredictor(model, window_size, video_fps=fps)
    predictor.update(*frames[0])  # load dlib / openSMILE / trace the model outside timing
    predictor.reset()
    updates = 0
    start = time.perf_counter()
    for frame, t, audio in frames:
        updates += predictor.update(frame, t, audio) is not None
    total = time.perf_counter() - start
    return {"frames_per_s": round(len(frames) / total, 2), "updates": updates, "frames": len(frames)}


def run_paced(model, frames, window_size: int, fps: float, loops: int) -> dict:
    """Frames arrive in real time (30 fps) with their audio, as from a webcam and microphone.

    As in the app, audio goes to an :class:`AudioFeeder` thread and the main loop always takes the newest
    frame that has arrived (older ones are dropped when it falls behind). Latency: arrival -> prediction.
    """
    predictor = StreamingPredictor(model, window_size, video_fps=fps)
    predictor.update(*frames[0])
    predictor.reset()
    feeder = AudioFeeder(predictor)
    period = frames[1][1] - frames[0][1]
    clip_s = frames[-1][1] + period
    schedule = [(loop * clip_s + t, frame, audio) for loop in range(loops) for frame, t, audio in frames]
    latencies, processed, next_audio = [], 0, 0
    start = time.perf_counter()
    i = 0
    while i < len(schedule):
        now = time.perf_counter() - start
        if schedule[i][0] > now:
            time.sleep(schedule[i][0] - now)
            now = schedule[i][0]
        while i + 1 < len(schedule) and schedule[i + 1][0] <= now:  # newest arrived frame; drop the rest
            i += 1
        while next_audio <= i:  # the microphone delivers audio in real time, dropped frames or not
            if schedule[next_audio][2] is not None:
                feeder.put(schedule[next_audio][2])
            next_audio += 1
        arrival, frame, _ = schedule[i]
        prediction = predictor.update(frame, arrival)
        processed += 1
        if prediction is not None:
            latencies.append(time.perf_counter() - start - arrival)
        i += 1
    wall = time.perf_counter() - start
    feeder.close()
    return {
        "frames_arrived": len(schedule),
        "frames_processed": processed,
        "frames_processed_per_s": round(processed / wall, 2),
        "updates_per_s": round(len(latencies) / wall, 2),
        "latency": percentiles(latencies),
        "audio_errors": feeder.error,
    }


def components(frames, backend, extractor) -> dict:
    """Median cost of the parts of one update: face embedding, one 0.3 s openSMILE hop."""
    sampled = frames[::6][:12]
    face = []
    for frame, *_ in sampled:
        t0 = time.perf_counter()
        backend.embed([frame])
        face.append(time.perf_counter() - t0)
    audio = np.concatenate([a for *_, a in frames if a is not None])
    hop = []
    for k in range(10):
        t0 = time.perf_counter()
        extractor.extract(audio[k * 3200 : k * 3200 + 4800])
        hop.append(time.perf_counter() - t0)
    return {"face_detect_align_embed": percentiles(face), "opensmile_lld_0.3s_hop": percentiles(hop)}


def run_naive(keras_model, backend, extractor, frames, window_size: int) -> dict:
    """Every frame embedded; openSMILE on the window's whole audio; model.predict() at every frame."""
    audio_all = np.concatenate([a for *_, a in frames if a is not None])
    window_s = window_size / 5.0
    video, latencies = [], []
    start = time.perf_counter()
    for frame, t, _ in frames:
        t0 = time.perf_counter()
        emb, mask = backend.embed([frame])
        video = (video + [(emb[0], mask[0])])[-window_size:]
        stop = int((t + 1 / 30) * SAMPLE_RATE)
        segment = audio_all[max(0, stop - int(window_s * SAMPLE_RATE)) : stop]
        lld = extractor.extract(segment) if segment.size >= 0.1 * SAMPLE_RATE else np.zeros((1, 25), np.float32)
        inputs = {
            "audio": lld[None],
            "audio_mask": np.ones((1, len(lld)), np.float32),
            "video": np.stack([e for e, _ in video])[None].astype(np.float32),
            "video_mask": np.array([[float(m) for _, m in video]], np.float32),
        }
        keras_model.predict(inputs, verbose=0)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"frames_per_s": round(len(frames) / total, 2), "latency": percentiles(latencies)}


def model_timings(keras_model, config, window_size: int, fps: float, repeats: int = 200) -> dict:
    """Seconds per window for Keras (tf.function) and each TFLite export that converts here."""
    from emotion_lib.training.export import TFLITE_MODES, TFLiteRunner, to_tflite

    audio_steps = round(window_size / fps * 100)
    window = random_window(config, window_size, audio_steps)
    runners = {"keras": WindowModel(keras_model)}
    errors = {}
    tflite_config = config.replace(window_audio_frames=audio_steps, window_video_frames=window_size)
    for mode in TFLITE_MODES:
        try:
            data = to_tflite(keras_model, tflite_config, mode, representative=lambda: [window] * 8)
            runner = TFLiteRunner(data)
            runners[f"tflite_{mode}"] = WindowModel(runner, {k: s[1:] for k, s in runner.shapes.items()})
        except Exception as exc:  # report, do not hide, an export that fails here
            errors[f"tflite_{mode}"] = f"{type(exc).__name__}: {exc}"[:300]
    out = {name: time_calls(run, window, repeats) for name, run in runners.items()}
    # the demo's default window (30 face frames = 6 s, 600 audio frames) with the free-length Keras model
    out["keras_window30"] = time_calls(runners["keras"], random_window(config, 30, round(30 / fps * 100)), repeats)
    return {"per_window": out, "export_errors": errors, "runners": runners}


def random_window(config, video_steps: int, audio_steps: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "audio": rng.normal(size=(1, audio_steps, config.audio_dim)).astype(np.float32),
        "audio_mask": np.ones((1, audio_steps), np.float32),
        "video": rng.normal(size=(1, video_steps, config.video_dim)).astype(np.float32),
        "video_mask": np.ones((1, video_steps), np.float32),
    }


def time_calls(run, window: dict, repeats: int) -> dict:
    run(window)  # trace / allocate outside timing
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(window)
        times.append(time.perf_counter() - t0)
    return percentiles(times)


def run_pipelines(runners: dict, tflite: dict, frames, window_size: int, fps: float, loops: int) -> dict:
    """Throughput and paced latency of the whole pipeline with the Keras model and the fastest TFLite export."""
    chosen = {"keras": runners["keras"]}
    if tflite:
        best = min(tflite, key=tflite.get)
        chosen[best] = runners[best]
    return {
        name: {
            "throughput": run_throughput(runner, frames, window_size, fps),
            "paced": run_paced(runner, frames, window_size, fps, loops),
        }
        for name, runner in chosen.items()
    }


def machine(load_at_start: float) -> dict:
    """CPU count, load average at the start and now, niceness and Python version."""
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load_at_start,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "nice": os.nice(0),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=3, help="times the clip is replayed in the paced run")
    parser.add_argument("--window_size", type=int, default=10, help="face frames in the window (5 frames/s)")
    parser.add_argument("--naive_frames", type=int, default=30, help="frames for the naive baseline")
    args = parser.parse_args()
    load_at_start = round(os.getloadavg()[0], 2)

    from emotion_lib.features.audio import AudioFeatureExtractor
    from emotion_lib.features.faces.registry import get_face_backend
    from emotion_lib.features.video import DEFAULT_FPS
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.models.fusion import build_model

    clip, clip_label = pick_clip()
    frames = camera_frames(clip)
    config = ModelConfig()
    model = build_model(config)  # untrained weights: speed does not depend on them
    models = model_timings(model, config, args.window_size, DEFAULT_FPS)
    runners = models.pop("runners")
    tflite = {k: v["median_ms"] for k, v in models["per_window"].items() if k.startswith("tflite")}
    pipelines = run_pipelines(runners, tflite, frames, args.window_size, DEFAULT_FPS, args.loops)
    backend, extractor = get_face_backend("dlib"), AudioFeatureExtractor()
    parts = components(frames, backend, extractor)
    naive = run_naive(model, backend, extractor, frames[: args.naive_frames], args.window_size)
    fastest = min(pipelines, key=lambda n: pipelines[n]["paced"]["latency"]["p95_ms"])
    headline = pipelines[fastest]
    result = {
        "clip": clip_label,
        "camera": f"{CAMERA_WIDTH} px wide, {len(frames)} frames at "
        f"{1 / (frames[1][1] - frames[0][1]):.2f} fps with audio",
        "face_backend": "dlib (offline: HOG detector at 320 px, coarse first, 5-point alignment, "
        "ResNet 128-d run by TensorFlow)",
        "window": {
            "face_frames": args.window_size,
            "face_fps": DEFAULT_FPS,
            "audio_frames": round(args.window_size / DEFAULT_FPS * 100),
        },
        "headline_model": fastest,
        "frames_per_s": headline["throughput"]["frames_per_s"],
        "latency_ms": headline["paced"]["latency"],
        "pipelines": pipelines,
        "components": parts,
        "naive_baseline": naive,
        "speedup_vs_naive_frames_per_s": round(headline["throughput"]["frames_per_s"] / naive["frames_per_s"], 2),
        "model": models,
        "targets": {
            "frames_per_s>=15": headline["throughput"]["frames_per_s"] >= 15,
            "p95_latency_ms<=150": headline["paced"]["latency"]["p95_ms"] <= 150,
            "tflite_per_window_ms<=5": bool(tflite) and min(tflite.values()) <= 5,
        },
        "machine": machine(load_at_start),
        "command": f"python benchmarks/realtime.py --loops {args.loops} --window_size {args.window_size}",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
