"""Peak memory of one training epoch against corpus size, features in memory vs streamed from the feature cache;
writes reports/benchmarks/training_memory.json.

The corpora come from the feature cache of the scale benchmark's 1,000-clip CREMA-D-sized synthetic corpus
(``benchmarks/scale.py``: its ``size-1000`` folder, features extracted by the real pipeline): a size up to 1,000 is
a seeded sample of its clips (``subset_clips``), a larger size is all of them plus replicas of the first clips under
new names (``<clip_id>~r<k>``, the same actor, so the same split), whose cache entries are hard links to the
originals in this benchmark's own cache folder (the cache's real format; nothing is extracted). Splits are the
actor-disjoint ones ``load_corpus_sequences`` attaches (seed 0). For every size and mode, one child process loads the
sequences (``split_sequences`` on the loaded features, or ``stream_split_sequences``) and trains the default model
for one epoch (TensorFlow on one thread) and reports its maximum resident memory (``getrusage``, the measure to
compare); the parent also samples the PSS of its process tree every 0.2 s (``PeakMemory`` of
``benchmarks/extraction.py``), which moves with the other processes sharing TensorFlow's libraries (see the summary's
note). Peak memory does not depend on the machine's CPU load, so it is valid on a shared machine.
The CPU-time ratio of an epoch (streamed / in memory) is measured at ``--cpu-size`` clips over two epochs, from the
second epoch (the first also traces the model), as process CPU time (all threads).

Usage: ``python benchmarks/training_memory.py [--sizes 100 1000 3000 7442] [--source DIR] [--work-dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.data.clips import subset_clips
from emotion_lib.data.corpora import load_corpus
from emotion_lib.data.splits import attach_splits
from emotion_lib.features.store import ExtractionConfig, clip_dir
from emotion_lib.paths import BENCHMARKS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import PeakMemory  # noqa: E402  (the extraction benchmark's meter, shared)

DEFAULT_SIZES = (100, 1000, 3000, 7442)
MODES = ("in_memory", "streamed")
FLATNESS = 0.20
"""Target: streamed peak memory within 20 % from the smallest to the largest size."""
THREADS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def corpus_table(source: Path, size: int, cache: Path, config: ExtractionConfig) -> tuple[pd.DataFrame, Path]:
    """The clip table of ``size`` clips (with splits) and the cache folder holding their entries."""
    clips, _ = load_corpus("synthetic", source / "corpus")
    clips = attach_splits(clips, seed=0)
    original = clip_dir(source / "cache", "synthetic", config)
    if size <= len(clips):
        return subset_clips(clips, size, 0).reset_index(drop=True), source / "cache"
    folder = clip_dir(cache, "synthetic", config)
    folder.mkdir(parents=True, exist_ok=True)
    replicas = []
    for k in range(size // len(clips) + 1):
        part = clips if k == 0 else clips.assign(clip_id=clips["clip_id"] + f"~r{k}")
        replicas.append(part)
        for old, new in zip(clips["clip_id"], part["clip_id"]):
            target = folder / f"{new}.npz"
            if not target.exists():
                os.link(original / f"{old}.npz", target)
    return pd.concat(replicas, ignore_index=True).head(size), cache


def train_child(table: str, cache: str, mode: str, epochs: int, out: str) -> dict:
    """(In the child process.) Load the splits of the clip table ``table`` (CSV) in ``mode``, train the default model
    for ``epochs``; what was held, and the CPU seconds of each epoch."""
    import resource

    import keras
    import numpy as np

    from emotion_lib.features.store import load_features
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.sequences.corpus import split_sequences
    from emotion_lib.sequences.stream import stream_split_sequences
    from emotion_lib.training.trainer import train

    class EpochCPU(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(round(time.process_time() - self.started, 2))

    clips = pd.read_csv(table, dtype={"actor": str, "clip_id": str})
    config = ExtractionConfig()
    started = time.process_time()
    if mode == "streamed":
        splits, _ = stream_split_sequences(clips, config, cache)
        held = 0
    else:
        features = load_features(clips, config, cache, missing="skip")
        splits, _ = split_sequences(clips, {k: f for k, f in features.items() if len(f.audio)})
        del features
        held = sum(
            a.nbytes + (0 if v is None else v.nbytes + m.nbytes)
            for part in splits.values()
            for a, v, m in zip(part.audio, part.video, part.video_masks)
        )
    load_cpu = time.process_time() - started
    train_data = splits["train"]
    model = ModelConfig(audio_dim=train_data.audio_dim, video_dim=train_data.video_dim or 128, epochs=epochs)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meter = EpochCPU()
    result = train(
        model, train_data, splits["validation"], out, resume=False, callbacks=[meter],
        tensorboard_dir=Path(out) / "tb", progress=False,
    )  # fmt: skip
    return {
        "clips_per_split": {name: len(part) for name, part in splits.items()},
        "batch_size": model.batch_size,
        "longest_audio_frames": int(max(train_data.lengths())),
        "features_in_memory_mb": round(held / 2**20, 1),
        "load_cpu_seconds": round(load_cpu, 2),
        "epoch_cpu_seconds": meter.seconds,
        "train_loss": [round(x, 6) for x in result.history["loss"]],
        "val_loss": [round(x, 6) for x in result.history["val_loss"]],
        "max_rss_after_loading_mb": round(rss_loaded, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "numpy": np.__version__,
    }


def run_child(table: Path, cache: Path, mode: str, epochs: int, out: Path) -> dict:
    """:func:`train_child` in a child process under ``PeakMemory`` (nice 19, TensorFlow on one thread)."""
    command = ["nice", "-n", "19", sys.executable, __file__, "--child", str(table), str(cache), mode, str(out)]
    command += ["--epochs", str(epochs)]
    with PeakMemory() as memory:
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **THREADS})
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "peak_memory_mb": round(memory.peak_mb, 1)}


def summary(results: dict) -> dict:
    """Peak memory by size for both modes (the child's maximum RSS, and the sampled PSS), and the flatness of each
    from the smallest to the largest size."""
    out = {}
    for measure in ("max_rss_mb", "peak_memory_mb"):
        table = {mode: {} for mode in MODES}
        for size, entry in sorted(results["sizes"].items(), key=lambda item: int(item[0])):
            for mode in MODES:
                if measure in entry.get(mode, {}):
                    table[mode][size] = entry[mode][measure]
        out[measure] = table
        for mode, peaks in table.items():
            if len(peaks) >= 2:
                ratio = peaks[max(peaks, key=int)] / peaks[min(peaks, key=int)]
                out[f"{mode}_{measure}_ratio_largest_to_smallest"] = round(ratio, 3)
                out[f"{mode}_{measure}_flat"] = abs(ratio - 1) <= FLATNESS
    cpu = results.get("cpu_time", {})
    if all("epoch_cpu_seconds" in cpu.get(mode, {}) for mode in MODES):
        seconds = {mode: cpu[mode]["epoch_cpu_seconds"][-1] for mode in MODES}
        out["epoch_cpu_ratio_streamed_to_in_memory"] = round(seconds["streamed"] / seconds["in_memory"], 3)
    out["note"] = (
        "max_rss_mb is the training process's own peak resident memory (getrusage), shared libraries counted in "
        "full, so it does not depend on other processes: the measure to compare. peak_memory_mb sums the sampled "
        "PSS of the benchmark's process tree (this parent, about 0.25 GB, included); PSS splits shared library pages "
        "(TensorFlow's, about 0.4 GB) between the processes mapping them, so it rises when other TensorFlow "
        "processes on the machine end (the 3,000-clip streamed run started as the machine's other jobs finished: "
        "load 4.7 against 7.6-9 before), which is why its streamed 3,000-clip value stands out "
        "while max_rss_mb is flat."
    )
    return out


def write(results: dict, path: Path) -> None:
    """The JSON with its summary, written after each run (what makes the benchmark resumable)."""
    results["summary"] = summary(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--cpu-size", type=int, default=1000, help="size of the two-epoch CPU-time runs (0: none)")
    parser.add_argument("--source", type=Path, default=Path(tempfile.gettempdir()) / "emotion_lib-scale" / "size-1000")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "emotion_lib-training-memory")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_DIR / "training_memory.json")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", nargs=4, metavar=("TABLE", "CACHE", "MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        table, cache, mode, out = args.child
        print(json.dumps(train_child(table, cache, mode, args.epochs, out)))
        return 0
    results = json.loads(args.out.read_text()) if args.out.exists() else {"sizes": {}}
    results.update(description=__doc__.split("\n\n")[1].replace("\n", " "), source=str(args.source))
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    config = ExtractionConfig()
    runs = [(size, mode, 1) for size in args.sizes for mode in args.modes]
    runs += [(args.cpu_size, mode, 2) for mode in MODES] if args.cpu_size else []
    for size, mode, epochs in runs:
        entry = results["sizes"].setdefault(str(size), {}) if epochs == 1 else results.setdefault("cpu_time", {})
        if "peak_memory_mb" in entry.get(mode, {}):
            continue
        folder = args.work_dir / f"size-{size}"
        folder.mkdir(parents=True, exist_ok=True)
        clips, cache = corpus_table(args.source, size, args.work_dir / "cache", config)
        clips.to_csv(folder / "clips.csv", index=False)
        print(f"size {size}, {mode}, {epochs} epoch(s)", flush=True)
        load = os.getloadavg()
        entry[mode] = run_child(folder / "clips.csv", cache, mode, epochs, folder / f"model-{mode}-{epochs}")
        entry[mode].update(load_average_before=[round(x, 2) for x in load], date_utc=time.strftime("%FT%TZ"))
        write(results, args.out)
    write(results, args.out)
    print(json.dumps(results["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
