"""``predict`` speed on this CPU: one 3 s video clip (voice + face), warm and cold, beside a naive baseline.

* ``warm``: the median of several calls of ``emotion_lib.predict`` in one process once the model is loaded (the
  model and the extractors are kept between calls);
* ``cold``: a fresh Python process running ``import emotion_lib; emotion_lib.predict(clip, model=...)``, wall time
  from process start to the answer (interpreter, TensorFlow import, model and face-network load, first call), with
  the in-process phases;
* ``naive_baseline``: every call loads the model and the extractors again (``predict(..., cache=False)``);
* ``timeline_warm``: one warm call with ``timeline=True`` (the clip replayed through the streaming predictor).

Targets: warm < 1 s, cold < 10 s. The clip is the CREMA-D sample ``data/samples/crema-d/VideoFlash/1001_DFA_ANG_XX.flv``
played twice and cut to 3 s (MP4, by ffmpeg). The model is ``--model`` (default ``av``, the pretrained bundle in
``models/av``); when it is not there, an untrained stand-in bundle with the default ``ModelConfig`` architecture and
extraction settings (eGeMAPS + dlib at 5 frames/s) is timed instead, and the JSON says so. The 2 cores are shared: the
load average is recorded. Writes reports/benchmarks/predict.json.

    .venv/bin/python benchmarks/predict.py [--model av] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.inference import load_predictor, predict
from emotion_lib.paths import BENCHMARKS_DIR, PRETRAINED_DIR, REPO_ROOT, SAMPLES_DIR

OUT = BENCHMARKS_DIR / "predict.json"
SOURCE = SAMPLES_DIR / "crema-d" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
CLIP_SECONDS = 3.0
TARGETS = {"warm_s": 1.0, "cold_s": 10.0}
PHASES = (
    "cold.import_s: `import emotion_lib` and emotion_lib.inference (no TensorFlow); cold.load_s: the TensorFlow "
    "import, the model bundle (checksums, Keras load), the face network and openSMILE; cold.first_call_s: the first "
    "prediction (graph tracing included); cold.wall_s: process start to answer. The naive baseline loads the model "
    "and extractors in every call (TensorFlow already imported). Figures measured under a load average well above "
    "the 2 cores are slower than on an idle machine."
)
COLD_SCRIPT = """
import json, sys, time
started = time.perf_counter()
import emotion_lib
from emotion_lib.inference import load_predictor
imported = time.perf_counter()
predictor = load_predictor(sys.argv[2])
loaded = time.perf_counter()
result = emotion_lib.predict(sys.argv[1], model=predictor)
done = time.perf_counter()
assert result.ok, result.error
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported, "first_call_s": done - loaded}))
"""


def make_clip(folder: Path) -> tuple[Path, str]:
    """The sample played twice and cut to :data:`CLIP_SECONDS` as an MP4 (or the sample itself without ffmpeg)."""
    if shutil.which("ffmpeg") is None:
        return SOURCE, f"{SOURCE.relative_to(REPO_ROOT)} as it is (no ffmpeg to lengthen it to {CLIP_SECONDS:g} s)"
    clip = folder / "clip_3s.mp4"
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(SOURCE), "-i", str(SOURCE)]
    command += ["-filter_complex", "[0:v][0:a][1:v][1:a]concat=n=2:v=1:a=1[v][a]", "-map", "[v]", "-map", "[a]"]
    command += ["-t", str(CLIP_SECONDS), "-c:v", "mpeg4", "-q:v", "3", "-c:a", "aac", str(clip)]
    subprocess.run(command, check=True)
    return (
        clip,
        f"{SOURCE.relative_to(REPO_ROOT)} played twice, cut to {CLIP_SECONDS:g} s (MP4 480x360 29.97 fps, AAC audio)",
    )


def stand_in_bundle(folder: Path) -> Path:
    """An untrained bundle with the default architecture and extraction settings (eGeMAPS LLDs + dlib faces)."""
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.models.fusion import build_model
    from emotion_lib.training.bundle import save_bundle

    config = ModelConfig()
    return save_bundle(folder / "stand_in_av", build_model(config), config, {}, ExtractionConfig())


def timed(call, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
        assert result.ok, result.error
    return seconds


def summary(seconds: list[float]) -> dict:
    return {
        "median_s": round(float(np.median(seconds)), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "n": len(seconds),
    }


def cold(clip: Path, model: Path) -> dict:
    """A fresh process: wall time from its start to the answer, and its in-process phases."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, str(clip), str(model)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the cold run failed:\n{done.stderr[-3000:]}")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 3), **{name: round(value, 3) for name, value in phases.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="av", help="voice, face, av or a bundle folder (default: av)")
    parser.add_argument("--repeats", type=int, default=5, help="warm calls timed")
    args = parser.parse_args()
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        clip, clip_text = make_clip(Path(tmp))
        pretrained = args.model in ("voice", "face", "av")
        model_path = PRETRAINED_DIR / args.model if pretrained else Path(args.model)
        if (model_path / "manifest.json").is_file() or model_path.is_file():
            model_text = f"{model_path} ({'pretrained' if pretrained else 'given'})"
        else:
            model_path = stand_in_bundle(Path(tmp))
            model_text = (
                f"untrained stand-in (the default ModelConfig architecture, eGeMAPS + dlib at 5 frames/s): "
                f"{PRETRAINED_DIR / args.model} is not there yet"
            )
        cold_run = cold(clip, model_path)
        predictor = load_predictor(model_path)
        first = timed(lambda: predict(clip, model=predictor), 1)
        warm = timed(lambda: predict(clip, model=predictor), args.repeats)
        naive = timed(lambda: predict(clip, model=model_path, cache=False), max(2, args.repeats // 2))
        with_timeline = timed(lambda: predict(clip, model=predictor, timeline=True), 2)
        answer = predict(clip, model=predictor)
    result = {
        "clip": clip_text,
        "model": model_text,
        "modalities_used": list(answer.modalities),
        "targets": TARGETS,
        "warm": summary(warm),
        "first_call_in_process_s": round(first[0], 3),
        "cold": cold_run,
        "naive_baseline_fresh_load_per_call": summary(naive),
        "timeline_warm": summary(with_timeline),
        "meets_targets": {
            "warm": float(np.median(warm)) < TARGETS["warm_s"],
            "cold": cold_run["wall_s"] < TARGETS["cold_s"],
        },
        "speedup_warm_vs_naive": round(float(np.median(naive) / np.median(warm)), 1),
        "notes": PHASES,
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load_at_start,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "nice": os.nice(0),
        "python": platform.python_version(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
