"""CREMA-D-scale benchmark on the synthetic corpus; writes reports/benchmarks/scale.json.

The synthetic generator writes a corpus in CREMA-D's layout and size: 91 actors, CREMA-D's recording plan per actor
(``layout='crema-d'``), the first 7,442 clips taken round-robin over the actors (``max_clips``), so a corpus of N
clips is exactly the first N clips of the full one and spreads over every actor. For each size (``--sizes``,
default 100, 1,000 and 7,442 clips), in its own folder (corpus and feature cache):

* extraction, audio (eGeMAPSv02 LLD) and face (the default backend, dlib, at ``--fps``), through the process pool
  of ``--workers``: wall and CPU time per clip (start-up included), the steady-state time per clip (from the
  intervals between stored clips, times the workers: the median and the mean, start-up excluded), and the peak
  memory of the process tree (PSS, see ``benchmarks/extraction.py``'s ``PeakMemory``);
* training: one epoch of the default model on the cached features of every clip of the size, in a child
  process, with the peak memory of that process: once with the features held in memory (``training``, with the
  size of the features it holds) and once streamed from the cache (``training_streamed``);
* the machine's load average before and after each size;
* with ``--bad-input N``, bad input at the largest size given: a hard-linked copy of its corpus where ``N`` clips
  have a broken file (missing, empty or corrupt; audio or video; broken after the clip table was made, as on a
  shared drive while a long run is queued) and ``N`` good clips are missing from a copy of its feature cache, is
  extracted and then extracted again: every good clip must end in the cache, each broken file must be named in the
  report, and the rerun must retry only the broken clips.

The flatness targets (steady-state time per clip and extraction peak memory within 20 % from the smallest to the
largest size) are computed from the smallest and the largest size measured. The run is resumable: a size already in
the output JSON (same settings) is skipped, and a size killed midway reuses its corpus and the clips already in its
cache. The JSON is marked ``partial`` until every default size is in it. ``--remeasure`` measures the given sizes
again (their cache emptied first), e.g. on a quieter machine than the one that measured them.

A corpus of all 7,442 clips loads as 7,438: the generator writes CREMA-D's names, and the CREMA-D loader skips the 4
clips that are broken in the official release (``CREMA_D_BROKEN``), as it does for the real corpus.

Usage: ``python benchmarks/scale.py [--sizes 100 1000 7442] [--workers 2] [--fps 5] [--work-dir DIR] [--remeasure]
[--bad-input 300]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.data.corpora import load_corpus
from emotion_lib.data.synthetic import generate_corpus
from emotion_lib.features.store import ExtractionConfig, clip_dir, extract_features
from emotion_lib.paths import BENCHMARKS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import Clock, PeakMemory, load_average  # noqa: E402  (the extraction benchmark's meters, shared)

DEFAULT_SIZES = (100, 1000, 7442)
CREMA_D_ACTORS = 91
CREMA_D_MEAN_SECONDS = 5.25 * 3600 / 7442
"""CREMA-D's mean clip duration (about 5.25 hours of audio over 7,442 clips: 2.54 s)."""
FLATNESS = 0.20
"""Targets: time per clip and extraction peak memory within 20 % from the smallest to the largest size."""


def make_corpus(folder: Path, size: int, workers: int) -> tuple[Path, float]:
    """The first ``size`` clips of the CREMA-D-sized synthetic corpus in ``folder`` (kept when already complete);
    returns it and the seconds spent generating it (0 when reused)."""
    if (folder / "README.txt").exists():
        return folder, 0.0
    started = time.perf_counter()
    generate_corpus(folder, n_actors=CREMA_D_ACTORS, layout="crema-d", max_clips=size, workers=workers, progress=False)
    return folder, time.perf_counter() - started


def steady_state(folder: Path, workers: int) -> dict:
    """Time per clip once the workers run (start-up excluded), from the modification times of the stored clips:
    wall seconds per clip over the run, and a worker's seconds per clip (the intervals times the workers)."""
    times = sorted(path.stat().st_mtime for path in folder.glob("*.npz"))
    gaps = [(b - a) * workers for a, b in zip(times, times[1:])]
    if len(gaps) < 2:
        return {"wall_seconds_per_clip": None, "median_worker_seconds_per_clip": None}
    return {
        "wall_seconds_per_clip": round((times[-1] - times[0]) / (len(times) - 1), 3),
        "median_worker_seconds_per_clip": round(statistics.median(gaps), 3),
        "mean_worker_seconds_per_clip": round(statistics.fmean(gaps), 3),
    }


def bench_extraction(corpus: Path, cache: Path, config: ExtractionConfig, workers: int) -> dict:
    """Extract every clip of ``corpus`` into ``cache`` with the process pool; time, memory and the report."""
    clips, _ = load_corpus("synthetic", corpus)
    with PeakMemory() as memory, Clock() as clock:
        report = extract_features(clips, config, cache, workers=workers, progress=False)
    done = max(len(report.done), 1)
    return {
        "clips": len(clips),
        "extracted": len(report.done),
        "cached_before": len(report.skipped),
        "failed": report.failed,
        "audio_seconds": round(report.audio_seconds, 1),
        "mean_clip_seconds": round(report.audio_seconds / done, 3),
        "video_frames": report.video_frames,
        "wall_seconds": round(clock.wall, 2),
        "cpu_seconds": round(clock.cpu, 2),
        "wall_seconds_per_clip": round(clock.wall / done, 3),
        "cpu_seconds_per_clip": round(clock.cpu / done, 3),
        "steady_state": steady_state(clip_dir(cache, "synthetic", config), workers),
        "peak_memory_mb": round(memory.peak_mb, 1),
        "peak_rss_sum_mb": round(memory.peak_rss_mb, 1),
        "note": "wall and cpu per clip include spawning the workers and loading the models in each",
    }


def train_one_epoch(corpus: str, cache: str, fps: float, out: str, stream: bool = False) -> dict:
    """(In the child process.) One epoch of the default model on the cached features of every clip of ``corpus``,
    held in memory or streamed from the cache (``stream``); what it held in memory."""
    import resource

    from emotion_lib.models.config import ModelConfig
    from emotion_lib.sequences.corpus import load_corpus_sequences
    from emotion_lib.training.trainer import train

    config = ExtractionConfig(fps=fps)
    with Clock() as load:
        _, splits, _ = load_corpus_sequences("synthetic", corpus, extraction=config, cache_dir=cache, stream=stream)
    feature_bytes = (
        0
        if stream
        else sum(
            array.nbytes
            for part in splits.values()
            for arrays in (part.audio, part.video, part.video_masks)
            for array in arrays
            if array is not None
        )
    )
    train_data = splits["train"]
    model = ModelConfig(audio_dim=train_data.audio_dim, video_dim=train_data.video_dim or 128, epochs=1)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with Clock() as fit:
        train(
            model, train_data, splits["validation"], out, resume=False, tensorboard_dir=Path(out) / "tb", progress=False
        )
    return {
        "clips_per_split": {name: len(part) for name, part in splits.items()},
        "batch_size": model.batch_size,
        "longest_audio_frames": int(max(train_data.lengths())),
        "longest_video_frames": max((shape[0] for _, shape in train_data.shapes() if shape is not None), default=0),
        "features_in_memory_mb": round(feature_bytes / 2**20, 1),
        "load_seconds": round(load.wall, 2),
        "epoch_seconds": round(fit.wall, 2),
        "max_rss_after_loading_mb": round(rss_loaded, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def bench_training(corpus: Path, cache: Path, fps: float, folder: Path, stream: bool = False) -> dict:
    """Run :func:`train_one_epoch` in a child process (TensorFlow stays out of this one) under ``PeakMemory``."""
    command = [sys.executable, __file__, "--train", str(corpus), str(cache), str(folder / "model"), "--fps", str(fps)]
    with PeakMemory() as memory:
        done = subprocess.run(command + (["--stream"] if stream else []), capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "peak_memory_mb": round(memory.peak_mb, 1)}


BAD_KINDS = tuple((column, kind) for column in ("audio_path", "video_path") for kind in ("missing", "empty", "corrupt"))


def damage(clips: pd.DataFrame, clip_ids: Sequence[str], seed: int = 5) -> dict[str, Path]:
    """Break one file of each clip of ``clip_ids``, the kinds of :data:`BAD_KINDS` in turn; returns clip id -> the
    broken file. A file is unlinked before it is rewritten, so the original of a hard-linked copy stays intact."""
    rows = clips.set_index("clip_id")
    noise = np.random.default_rng(seed)
    broken = {}
    for clip_id, (column, kind) in zip(clip_ids, itertools.cycle(BAD_KINDS)):
        path = Path(rows.loc[clip_id, column])
        head = path.read_bytes()[:4]
        path.unlink()
        if kind != "missing":
            path.write_bytes(b"" if kind == "empty" else head + noise.bytes(4000))
        broken[clip_id] = path
    return broken


def bench_bad_input(folder: Path, n_bad: int, workers: int, config: ExtractionConfig) -> dict:
    """Bad input at one size (``folder`` holds its ``corpus`` and its complete ``cache``): ``n_bad`` clips broken in
    a hard-linked copy of the corpus, ``n_bad`` other clips taken out of a copy of the cache, extracted twice."""
    work = folder / "bad_input"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(folder / "corpus", work / "corpus", copy_function=os.link)
    shutil.copytree(folder / "cache", work / "cache")  # a real copy: the cache's manifest is rewritten in place
    clips, _ = load_corpus("synthetic", work / "corpus")
    ids = clips["clip_id"].to_numpy()[np.random.default_rng(0).permutation(len(clips))]
    bad, good_missing = list(ids[:n_bad]), list(ids[n_bad : 2 * n_bad])
    broken = damage(clips, bad)
    entries = clip_dir(work / "cache", "synthetic", config)
    for clip_id in bad + good_missing:
        (entries / f"{clip_id}.npz").unlink()
    with Clock() as clock:
        first = extract_features(clips, config, work / "cache", workers=workers, progress=False)
    stored = {path.stem for path in entries.glob("*.npz")}
    with Clock() as clock_again:
        again = extract_features(clips, config, work / "cache", workers=workers, progress=False)
    shutil.rmtree(work)
    return {
        "clips": len(clips),
        "broken_clips": n_bad,
        "good_clips_to_extract": len(good_missing),
        "first_run": {
            "extracted": len(first.done),
            "cached_before": len(first.skipped),
            "failed": len(first.failed),
            "wall_seconds": round(clock.wall, 1),
            "failures_naming_their_file": sum(str(broken[clip_id]) in reason for clip_id, reason in first.failed),
            "examples": [f"{clip_id}: {reason}" for clip_id, reason in first.failed[: len(BAD_KINDS)]],
        },
        "every_good_clip_stored": stored == set(ids) - set(bad),
        "rerun": {
            "extracted": len(again.done),
            "cached_before": len(again.skipped),
            "failed": len(again.failed),
            "wall_seconds": round(clock_again.wall, 1),
            "retried_only_the_broken": not again.done and {clip_id for clip_id, _ in again.failed} == set(bad),
        },
    }


def projection(sizes: dict, extraction_json: Path, workers: int) -> dict:
    """Projected extraction time of the real CREMA-D (7,442 clips, 2.54 s on average): the largest size's
    steady-state time per clip scaled by clip duration (audio and sampled frames both grow with it), and, beside
    it, from the real-clip rates of ``extraction.json`` (CREMA-D 480x360 FLV frames, audio x real time)."""
    largest = sizes[max(sizes, key=int)]["extraction"]
    per_clip = largest["steady_state"]["wall_seconds_per_clip"] or largest["wall_seconds_per_clip"]
    if not largest["extracted"]:
        return {"method": "none: the largest size had every clip cached before its run (nothing timed)"}
    scale = CREMA_D_MEAN_SECONDS / largest["mean_clip_seconds"]
    result = {
        "method": "steady-state wall seconds per clip (all workers) x (2.54 s / synthetic mean clip seconds) x "
        "7,442; synthetic video is 224x224 MP4, real CREMA-D 480x360 FLV (decoding costs more: see the other line)",
        "from_synthetic_hours": round(per_clip * scale * 7442 / 3600, 2),
        "from_synthetic_cpu_hours_on_free_cores": round(
            largest["cpu_seconds_per_clip"] * scale * 7442 / workers / 3600, 2
        ),
        "note": "wall time moves with the machine's load (see load_average_*); the CPU-time lines assume free cores",
    }
    if extraction_json.exists():
        measured = json.loads(extraction_json.read_text())
        frames = measured["video"]["dlib"]["per_set"]["crema-d_flv_480x360"]["ours_one_process"]
        audio_x = measured["audio"]["ours_one_process"]["x_real_time_per_core_cpu"]
        fps = measured["settings"]["fps"]
        cpu = 7442 * CREMA_D_MEAN_SECONDS * (fps / frames["frames_per_s_per_core_cpu"] + 1 / audio_x)
        result["from_real_clip_rates_hours"] = round(cpu / workers / 3600, 2)
        result["real_rates"] = f"{extraction_json.name}: dlib on CREMA-D FLV, audio x real time per core (CPU time)"
    return result


def targets(sizes: dict) -> dict:
    """Flatness from the smallest to the largest size measured (``None``: fewer than two sizes), and whether the
    largest size's bad input was handled (when measured)."""
    if len(sizes) < 2:
        return {"per_clip_time_flat": None, "extraction_memory_flat": None, "note": "needs two sizes or more"}
    small, large = (sizes[key]["extraction"] for key in (min(sizes, key=int), max(sizes, key=int)))
    time_ratio = large["steady_state"]["wall_seconds_per_clip"] / small["steady_state"]["wall_seconds_per_clip"]
    memory_ratio = large["peak_memory_mb"] / small["peak_memory_mb"]
    result = {
        "compared_sizes": [min(sizes, key=int), max(sizes, key=int)],
        "per_clip_time_ratio": round(time_ratio, 3),
        "per_clip_time_flat": abs(time_ratio - 1) <= FLATNESS,
        "extraction_memory_ratio": round(memory_ratio, 3),
        "extraction_memory_flat": abs(memory_ratio - 1) <= FLATNESS,
        "note": "ratio = largest / smallest size; below 0.8 the larger size ran faster per clip (warm-up amortised, "
        "or a quieter machine: compare the load averages), above 1.2 slower",
    }
    bad = sizes[max(sizes, key=int)].get("bad_input")
    if bad:  # every good clip stored, every broken one named with its file, the rerun retried only those
        first = bad["first_run"]
        result["bad_input_handled"] = (
            bad["every_good_clip_stored"]
            and first["failures_naming_their_file"] == first["failed"] == bad["broken_clips"]
            and bad["rerun"]["retried_only_the_broken"]
        )
    return result


def training_memory(sizes: dict) -> dict:
    """Does training memory follow a batch and the longest bucket, or the corpus? Peak memory per size with the
    features held in memory (``training``) and streamed from the cache (``training_streamed``), the features held,
    and the features projected to 7,442 clips."""
    trained = {
        size: entry["training"] for size, entry in sizes.items() if "features_in_memory_mb" in entry.get("training", {})
    }
    if not trained:
        return {}
    largest = trained[max(trained, key=int)]
    per_clip = largest["features_in_memory_mb"] / sum(largest["clips_per_split"].values())
    streamed = {
        size: entry["training_streamed"]["peak_memory_mb"]
        for size, entry in sizes.items()
        if "peak_memory_mb" in entry.get("training_streamed", {})
    }
    result = {
        "peak_memory_mb": {size: t["peak_memory_mb"] for size, t in trained.items()},
        "streamed_peak_memory_mb": streamed,
        "features_in_memory_mb": {size: t["features_in_memory_mb"] for size, t in trained.items()},
        "features_mb_projected_at_7442": round(per_clip * 7442, 1),
        "note": "in memory (load_corpus_sequences' default) every clip's sequences are held, a part that grows "
        "linearly with the corpus; streamed (load_corpus_sequences(stream=True)) each batch's clips are read from the "
        "cache when the batch is made, so memory holds a few batches (bounded by batch_size x the longest sequence "
        "of a bucket) and one small record per clip. reports/benchmarks/training_memory.json measures both up to "
        "7,442 clips.",
    }
    if len(streamed) >= 2:
        ratio = streamed[max(streamed, key=int)] / streamed[min(streamed, key=int)]
        result["streamed_ratio_largest_to_smallest"] = round(ratio, 3)
        result["bounded_by_batch"] = abs(ratio - 1) <= FLATNESS
    return result


def bench_size(size: int, entry: dict, args: argparse.Namespace, save: Callable[[], None]) -> None:
    """Corpus, extraction and one epoch of training at one size, in ``work_dir/size-<size>``, into ``entry``;
    ``save()`` after each phase, and a phase already in ``entry`` is not run again (a killed run resumes)."""
    folder = args.work_dir / f"size-{size}"
    config = ExtractionConfig(fps=args.fps)
    if "extraction" not in entry:
        entry["load_average_before"] = load_average()
        corpus, generation_seconds = make_corpus(folder / "corpus", size, args.workers)
        print(f"size {size}: extraction", flush=True)
        entry["generation_seconds"] = round(generation_seconds, 1)
        entry["extraction"] = bench_extraction(corpus, folder / "cache", config, args.workers)
        save()
    print(f"size {size}: one epoch of training, features in memory and streamed", flush=True)
    entry["training"] = bench_training(folder / "corpus", folder / "cache", args.fps, folder)
    entry["training_streamed"] = bench_training(folder / "corpus", folder / "cache", args.fps, folder, stream=True)
    entry["load_average_after"] = load_average()
    entry["complete"] = "error" not in entry["training"] and "error" not in entry["training_streamed"]
    save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "emotion_lib-scale")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_DIR / "scale.json")
    parser.add_argument("--remeasure", action="store_true", help="measure the sizes again, even those in the JSON")
    parser.add_argument("--bad-input", type=int, default=0, metavar="N", help="break N clips at the largest size")
    parser.add_argument("--train", nargs=3, metavar=("CORPUS", "CACHE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        corpus, cache, out = args.train
        print(json.dumps(train_one_epoch(corpus, cache, args.fps, out, args.stream)))
        return 0
    settings = {"workers": args.workers, "fps": args.fps, "backend": ExtractionConfig().video_backend}
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    if results.get("settings") != settings:
        results = {"settings": settings, "sizes": {}}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    for size in sorted(args.sizes):
        if args.remeasure:
            results["sizes"].pop(str(size), None)
            shutil.rmtree(args.work_dir / f"size-{size}" / "cache", ignore_errors=True)
        entry = results["sizes"].setdefault(str(size), {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if entry.get("complete"):
            print(f"size {size}: already measured, skipped", flush=True)
            continue
        bench_size(size, entry, args, lambda: write(results, args))
    largest = results["sizes"][str(max(args.sizes))]
    if args.bad_input and largest.get("complete") and "bad_input" not in largest:
        print(f"size {max(args.sizes)}: bad input, {args.bad_input} broken clips", flush=True)
        folder = args.work_dir / f"size-{max(args.sizes)}"
        largest["bad_input"] = bench_bad_input(folder, args.bad_input, args.workers, ExtractionConfig(fps=args.fps))
    write(results, args)
    print(json.dumps(results, indent=2))
    return 0


def write(results: dict, args: argparse.Namespace) -> None:
    """The JSON with the derived fields, written after each size (what makes the run resumable)."""
    sizes = {size: entry for size, entry in results["sizes"].items() if "extraction" in entry}
    results["partial"] = not all(results["sizes"].get(str(size), {}).get("complete") for size in DEFAULT_SIZES)
    if results["partial"]:
        results["partial_note"] = (
            f"PARTIAL: only the sizes {sorted(map(int, sizes))} were measured (default {list(DEFAULT_SIZES)}); "
            "run `python benchmarks/scale.py` on a quiet machine for the full table"
        )
    else:
        results.pop("partial_note", None)
    results["targets"] = {"flatness": FLATNESS, **targets(sizes)} if sizes else {}
    results["training_memory"] = training_memory(sizes)
    results["projection_real_crema_d"] = projection(sizes, BENCHMARKS_DIR / "extraction.json", args.workers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
