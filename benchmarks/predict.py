"""``predict`` speed on this CPU: one 3 s video clip (voice + face), warm and cold, beside a naive baseline.

* ``warm``: the median of several calls of ``emotion_lib.predict`` in one process once the model is loaded (the
  model and the extractors are kept between calls);
* ``cold``: a fresh Python process running ``import emotion_lib; emotion_lib.predict(clip, model=...)``, wall and
  CPU time from process start to the answer (interpreter, imports, model and face-network load, first call), with
  the in-process phases; ``cold_command``: the same through ``python -m emotion_lib predict``;
* ``naive_baseline``: every call loads the model and the extractors again (``predict(..., cache=False)``);
* ``timeline_warm``: one warm call with ``timeline=True`` (the clip replayed through the streaming predictor);
* ``runtime``: the TFLite interpreter that ran (the LiteRT runtime, ``ai-edge-litert``, when installed: then the cold
  process never imports TensorFlow), and whether TensorFlow was imported in the cold process.

``--agreement`` instead compares the TFLite route (the bundle's ``model.tflite`` and TFLite face network, what
``predict`` runs) with the Keras route (``runtime="keras"``: the ``.keras`` model and the Keras face network) on real
clips: the six CREMA-D samples in ``data/samples`` and the 44 RAVDESS actor-01 videos of ``ravdess-faces`` (shared
data), for every pretrained model, and records the largest absolute probability difference and the label agreement
under ``tflite_agreement`` in the same JSON (a timing run keeps it).

Targets: warm < 1 s, cold < 10 s. The clip is the CREMA-D sample ``data/samples/crema-d/VideoFlash/1001_DFA_ANG_XX.flv``
played twice and cut to 3 s (MP4, by ffmpeg). The model is ``--model`` (default ``av``, the pretrained bundle in
``models/av``); when it is not there, an untrained stand-in bundle with the default ``ModelConfig`` architecture and
extraction settings (eGeMAPS + dlib at 5 frames/s) is timed instead, and the JSON says so. The 2 cores are shared: the
load average is recorded. Writes reports/benchmarks/predict.json.

    .venv/bin/python benchmarks/predict.py [--model av] [--repeats 5]
    .venv/bin/python benchmarks/predict.py --agreement
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
from emotion_lib.inference.predictor import pretrained_names
from emotion_lib.paths import BENCHMARKS_DIR, PRETRAINED_DIR, REPO_ROOT, SAMPLES_DIR, shared_data_dir

OUT = BENCHMARKS_DIR / "predict.json"
SOURCE = SAMPLES_DIR / "crema-d" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
CLIP_SECONDS = 3.0
TARGETS = {"warm_s": 1.0, "cold_s": 10.0}
PHASES = (
    "cold.import_s: `import emotion_lib` and emotion_lib.inference (no TensorFlow); cold.load_s: the model bundle "
    "(checksums, its TFLite model, or the TensorFlow import and Keras load for a bundle without one), the face network "
    "and openSMILE; cold.first_call_s: the first prediction; cold.wall_s: process start to answer, cold.cpu_s the CPU "
    "time of that process (user + system: what the cold start costs whatever else runs); cold_command: the same for "
    "`python -m emotion_lib predict CLIP --model MODEL --json` (argument parsing and output included). The naive "
    "baseline loads the model and extractors in every call. Figures measured under a load average well above the 2 "
    "cores are slower than on an idle machine."
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
phases = {"import_s": imported - started, "load_s": loaded - imported, "first_call_s": done - loaded}
modules = {f"{name}_imported": name in sys.modules for name in ("tensorflow", "keras")}
print(json.dumps({**phases, **modules}))
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
    """A fresh process: wall and CPU time from its start to the answer, its in-process phases, and whether it imported
    TensorFlow."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, str(clip), str(model)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"the cold run failed:\n{done.stderr[-3000:]}")
    cpu = after.children_user - before.children_user + after.children_system - before.children_system
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    rounded = {name: round(value, 3) if isinstance(value, float) else value for name, value in phases.items()}
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), **rounded}


def cold_command(clip: Path, model: Path) -> dict:
    """``python -m emotion_lib predict CLIP --model MODEL --json`` in a fresh process: wall and CPU time."""
    before = os.times()
    start = time.perf_counter()
    command = [sys.executable, "-m", "emotion_lib", "predict", str(clip), "--model", str(model), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"the predict command failed:\n{done.stderr[-3000:]}")
    cpu = after.children_user - before.children_user + after.children_system - before.children_system
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "label": json.loads(done.stdout)[0]["label"]}


def agreement_clips() -> list[Path]:
    """The six CREMA-D samples and the RAVDESS actor-01 videos of the shared data (surprise, code 08, left out)."""
    samples = sorted((SAMPLES_DIR / "crema-d" / "VideoFlash").glob("*.flv"))
    folder = shared_data_dir() / "ravdess-faces" / "Actor_01"
    ravdess = sorted(p for p in folder.glob("*.mp4") if p.name.split("-")[2] != "08")
    return samples + ravdess


def agreement(models: tuple[str, ...] = ()) -> dict:
    """The TFLite route against the Keras route on :func:`agreement_clips`, per pretrained model (default: all)."""
    models = models or tuple(pretrained_names())
    clips = agreement_clips()
    samples = sum(clip.suffix == ".flv" for clip in clips)
    result: dict = {"clips": {"crema-d samples": samples, "ravdess-faces actor 01": len(clips) - samples}, "models": {}}
    for model in models:
        routes = {runtime: load_predictor(model, runtime=runtime) for runtime in ("tflite", "keras")}
        answers = {runtime: predict(clips, model=predictor) for runtime, predictor in routes.items()}
        pairs = [(lite, keras) for lite, keras in zip(answers["tflite"], answers["keras"]) if lite.ok and keras.ok]
        differences = [max(abs(a.probabilities[e] - b.probabilities[e]) for e in a.probabilities) for a, b in pairs]
        result["models"][model] = {
            "clips_answered": len(pairs),
            "max_abs_probability_difference": float(f"{max(differences):.3g}"),
            "median_abs_probability_difference": float(f"{np.median(differences):.3g}"),
            "label_agreement": f"{sum(lite.label == keras.label for lite, keras in pairs)}/{len(pairs)}",
            "not_answered": sorted({a.path for a in answers["tflite"] + answers["keras"] if not a.ok}),
        }
    result["runtime"] = runtime_name()
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def runtime_name() -> str:
    from emotion_lib.features.tflite import litert_available

    return "LiteRT (ai-edge-litert)" if litert_available() else "TensorFlow's tf.lite interpreter"


def write(update: dict) -> None:
    """Write ``update`` to :data:`OUT`, keeping the fields of the other kind of run already there."""
    previous = json.loads(OUT.read_text()) if OUT.is_file() else {}
    kept = {"tflite_agreement": previous["tflite_agreement"]} if "tflite_agreement" in previous else {}
    result = {**previous, **update} if "tflite_agreement" in update else {**update, **kept}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(update, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="av",
        help="a pretrained model name (voice, face, av, av-branched) or a bundle folder (default: av)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="warm calls timed")
    parser.add_argument("--agreement", action="store_true", help="compare the TFLite and Keras routes on real clips")
    args = parser.parse_args()
    if args.agreement:
        write({"tflite_agreement": agreement()})
        return
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        clip, clip_text = make_clip(Path(tmp))
        pretrained = args.model in pretrained_names()
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
        cold_cli = cold_command(clip, model_path)
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
        "cold_command": cold_cli,
        "naive_baseline_fresh_load_per_call": summary(naive),
        "timeline_warm": summary(with_timeline),
        "meets_targets": {
            "warm": float(np.median(warm)) < TARGETS["warm_s"],
            "cold": cold_run["wall_s"] < TARGETS["cold_s"],
            "cold_command": cold_cli["wall_s"] < TARGETS["cold_s"],
        },
        "speedup_warm_vs_naive": round(float(np.median(naive) / np.median(warm)), 1),
        "runtime": runtime_name(),
        "notes": PHASES,
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load_at_start,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "nice": os.nice(0),
        "python": platform.python_version(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    write(result)


if __name__ == "__main__":
    main()
