"""Model speed on this CPU: training clips/s and one-window inference latency, Keras vs TFLite exports.

Writes reports/benchmarks/model.json. All variants are measured in one run on the same window (2 s of audio
LLDs at 100 frames/s and 10 face embeddings, the default real-time window) with the default ModelConfig.
Target: int8 one-window inference under 5 ms. Usage: python benchmarks/model.py [--repeats N] [--clips N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import tensorflow as tf

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.models.config import ModelConfig
from emotion_lib.paths import BENCHMARKS_DIR
from emotion_lib.sequences.data import random_clips
from emotion_lib.training.export import TFLITE_MODES, TFLiteRunner, clip_windows, to_tflite
from emotion_lib.training.trainer import samples_per_second, train
from emotion_lib.utils import atomic_write_bytes, set_seed


def latency_ms(run, window, repeats: int) -> dict:
    for _ in range(10):
        run(window)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(window)
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95)), "repeats": repeats}


def measure_training(config: ModelConfig, n_clips: int) -> tuple:
    """Train on random clips; returns the training result, the validation clips and the training speeds."""
    clips = random_clips(n_clips, seed=0, audio_frames=(150, 350), video_frames=(8, 18))
    val = random_clips(max(n_clips // 4, 8), seed=1, audio_frames=(150, 350), video_frames=(8, 18))
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, clips, val, tmp, tensorboard_dir=os.path.join(tmp, "tb"))
    history = result.history["seconds"]
    training = {
        "clips": len(clips),
        "validation_clips": len(val),
        "epochs": len(history),
        "epoch_seconds": history,
        "clips_per_second_median_epoch": samples_per_second(result, len(clips)),
        "clips_per_second_after_first_epoch": float(len(clips) / np.median(history[1:])) if len(history) > 1 else None,
        "note": "each epoch includes its validation pass; epoch 1 includes graph tracing",
    }
    return result, val, training


def measure_inference(model, config: ModelConfig, val, repeats: int) -> tuple[dict, dict]:
    """One-window latency of the Keras graph and of every TFLite mode; returns it and the flatbuffer sizes."""
    window = clip_windows(val, config, limit=1)[0]
    graph = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    inference = {"keras_tf_function": latency_ms(graph, window, repeats)}  # eager Keras: seconds per call
    sizes = {}
    calibration = clip_windows(val, config)
    for mode in TFLITE_MODES:
        started = time.perf_counter()
        flatbuffer = to_tflite(model, config, mode, representative=lambda: iter(calibration))
        runner = TFLiteRunner(flatbuffer, num_threads=1)
        inference[f"tflite_{mode}"] = latency_ms(runner, window, repeats)
        inference[f"tflite_{mode}"]["convert_seconds"] = time.perf_counter() - started
        inference[f"tflite_{mode}"]["max_abs_diff_vs_keras"] = float(np.abs(runner(window) - graph(window)).max())
        sizes[mode] = len(flatbuffer)
    baseline = inference["keras_tf_function"]["median_ms"]
    for entry in inference.values():
        entry["speedup_vs_keras_tf_function"] = baseline / entry["median_ms"]
    return inference, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--clips", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    set_seed(0)
    config = ModelConfig(epochs=args.epochs, batch_size=32, patience=100)
    result, val, training = measure_training(config, args.clips)
    model = result.model
    inference, sizes = measure_inference(model, config, val, args.repeats)
    report = {
        "what": "fusion model (default ModelConfig), one window: audio (1, 200, 25) + video (1, 10, 128)",
        "data": "random synthetic clips (speed only, not accuracy)",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
            "load_average_1min_at_end": os.getloadavg()[0],
        },
        "config": json.loads(config.to_json()),
        "parameters": model.count_params(),
        "training": training,
        "inference": inference,
        "tflite_bytes": sizes,
        "target": {"int8_median_ms_below": 5.0, "met": inference["tflite_int8"]["median_ms"] < 5.0},
    }
    path = BENCHMARKS_DIR / "model.json"
    atomic_write_bytes(path, json.dumps(report, indent=2).encode())
    print(
        json.dumps(
            {k: {"median_ms": round(v["median_ms"], 3), "p95_ms": round(v["p95_ms"], 3)} for k, v in inference.items()},
            indent=1,
        )
    )
    print(f"training: {training['clips_per_second_after_first_epoch']} clips/s; wrote {path}")


if __name__ == "__main__":
    main()
