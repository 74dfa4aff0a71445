"""What a training run of notebook 05's ablations costs, one after the other or side by side; writes
reports/benchmarks/ablation_cost.json.

The runs are notebook 05's base configuration (fusion of voice and face, BiLSTM, attention, focal loss, 30 epochs)
on the full synthetic corpus of ``make data`` (``data/synthetic``; features from notebook 01's cache, extracted here
when missing), seeds ``0 .. --seeds - 1``, trained and tested as an ablation run is (``run_cache.train_and_test``).
Two ways, on the same jobs:

- ``one_after_the_other`` (the baseline, how notebook 05 trained until 2026-12-02): every run in this process with
  TensorFlow's default threads (every core);
- ``side_by_side`` (``run_cache.train_in_processes``, what notebook 05 does now): ``--workers`` spawned processes,
  one TensorFlow thread each.

Reported: the wall seconds of each way (median over ``--repeats``), seconds per run, the speed-up, each run's
CPU seconds, and each run's test UA in both ways. The UAs differ between the ways: the thread count changes how
float sums are split; the side-by-side numbers are the ones every machine reproduces. The load average is recorded
before and after (run on an idle machine).

Usage: ``python benchmarks/ablation_cost.py [--seeds 2] [--workers 2] [--epochs 30] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.experiments import run_cache
from emotion_lib.models.config import ModelConfig
from emotion_lib.paths import BENCHMARKS_DIR
from emotion_lib.sequences.corpus import load_and_describe
from emotion_lib.utils import default_workers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import Clock, load_average  # noqa: E402  (the extraction benchmark's meters, shared)


def one_after_the_other(jobs: list[tuple], splits: dict, folder: Path) -> tuple[float, list[dict]]:
    """Every job in this process (TensorFlow's default threads): total wall seconds and each run's outcome."""
    runs = []
    with Clock() as total:
        for config, name in jobs:
            with Clock() as clock:
                metrics, epochs = run_cache.train_and_test(config, splits, folder / name)
            runs.append(outcome(name, metrics, epochs, clock.wall, clock.cpu))
    return total.wall, runs


def side_by_side(jobs: list[tuple], splits: dict, folder: Path, workers: int) -> tuple[float, list[dict]]:
    """Every job in ``workers`` spawned processes, one TensorFlow thread each: wall seconds and outcomes."""
    runs: list = [None] * len(jobs)
    with Clock() as total:
        for i, (metrics, epochs, seconds, cpu) in run_cache.train_in_processes(jobs, splits, folder, workers):
            runs[i] = outcome(jobs[i][1], metrics, epochs, seconds, cpu)
    return total.wall, runs


def outcome(name: str, metrics: dict, epochs: int, seconds: float, cpu: float) -> dict:
    return {"run": name, "test_ua": round(metrics["ua"], 4), "epochs": epochs, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="runs: the base configuration with seeds 0..N-1")
    parser.add_argument("--workers", type=int, default=default_workers(), help="processes side by side")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (notebook 05: 30)")
    parser.add_argument("--repeats", type=int, default=1, help="times each way is measured (the median is kept)")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_DIR / "ablation_cost.json")
    args = parser.parse_args(argv)
    data = load_and_describe("synthetic")
    splits = data.splits
    base = ModelConfig(
        modalities=("audio", "video"),
        audio_dim=splits["train"].audio_dim,
        video_dim=splits["train"].video_dim or 128,
        epochs=args.epochs,
    )
    jobs = [(base.replace(seed=seed), f"base_seed{seed}") for seed in range(args.seeds)]
    before = load_average()
    ways: dict[str, list] = {"one_after_the_other": [], "side_by_side": []}
    with tempfile.TemporaryDirectory(prefix="ablation-cost-") as tmp:
        for repeat in range(args.repeats):
            print(f"repeat {repeat + 1}: side by side ({args.workers} processes)", flush=True)
            ways["side_by_side"].append(side_by_side(jobs, splits, Path(tmp) / f"side{repeat}", args.workers))
            print(f"repeat {repeat + 1}: one after the other (this process)", flush=True)
            ways["one_after_the_other"].append(one_after_the_other(jobs, splits, Path(tmp) / f"serial{repeat}"))
    wall = {way: statistics.median(seconds for seconds, _ in measured) for way, measured in ways.items()}
    result = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": before,
        "load_average_after": load_average(),
        "corpus": "synthetic (data/synthetic), splits " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()),
        "config": json.loads(base.to_json()),
        "runs": len(jobs),
        "workers": args.workers,
        "repeats": args.repeats,
        "wall_seconds": {way: round(seconds, 1) for way, seconds in wall.items()},
        "seconds_per_run": {way: round(seconds / len(jobs), 1) for way, seconds in wall.items()},
        "speedup_side_by_side": round(wall["one_after_the_other"] / wall["side_by_side"], 3),
        "runs_measured": {way: measured[-1][1] for way, measured in ways.items()},
        "note": "test UAs differ between the ways: one TensorFlow thread per process vs every core changes how float "
        "sums are split; notebook 05 trains side by side, so its numbers do not depend on the machine's cores",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
