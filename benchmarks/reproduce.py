"""How long the main job takes: ``make reproduce`` on a fresh clone, then again with nothing changed; writes
reports/benchmarks/reproduce.json.

The commit checked out here is cloned into ``--workdir`` (default: a new folder in the temporary directory), and
``make reproduce`` runs there twice with this checkout's environment (``VENV``; nothing is installed) and its real
clips (``EMOTION_SHARED_DATA``, :func:`emotion_lib.paths.shared_data_dir`):

- ``first_run``: what a new user waits for after ``make setup``: the synthetic corpus generated, every feature
  extracted, notebook 04's model and notebook 05's ablations trained;
- ``second_run`` (the baseline it is set against is the first): nothing changed, so features come from the cache,
  notebook 04 resumes its finished checkpoint and the ablation runs are read back.

Reported: each run's wall and CPU seconds (children included), the seconds of each notebook (papermill's own
``duration`` in the executed copies), the target (15 minutes for the first run), the commit, the load average before
and after (run on an idle machine: the times move with it). The clone is deleted afterwards unless ``--keep``.

Usage: ``python benchmarks/reproduce.py [--workdir PATH] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import load_average  # noqa: E402  (the extraction benchmark's meter, shared)

from emotion_lib.paths import shared_data_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIRST_RUN_TARGET_MINUTES = 15.0
"""The first run's target (issue 15: a new user's first ``make reproduce`` under 15 minutes on 2 cores)."""


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every finished child process of this one."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def notebook_seconds(folder: Path) -> dict[str, float]:
    """Notebook name -> papermill's recorded duration in the executed copies under ``folder``."""
    seconds = {}
    for path in sorted(folder.glob("*.ipynb")):
        metadata = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if metadata.get("duration") is not None:
            seconds[path.stem] = round(float(metadata["duration"]), 1)
    return seconds


def timed_reproduce(clone: Path, venv: Path, log: Path) -> dict:
    """Run ``make reproduce`` in ``clone`` once; its wall and CPU seconds and per-notebook seconds."""
    # the clone's own package first on the path (the environment's editable install points at this checkout)
    environment = os.environ | {"EMOTION_SHARED_DATA": str(shared_data_dir().resolve()), "PYTHONPATH": str(clone)}
    cpu_before, started = children_cpu_seconds(), time.perf_counter()
    with open(log, "w") as out:
        finished = subprocess.run(
            ["make", "-o", str(venv / ".installed"), "reproduce", f"VENV={venv}"],  # -o: never reinstall here
            cwd=clone,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    wall = time.perf_counter() - started
    if finished.returncode:
        raise SystemExit(f"make reproduce failed in {clone} (exit {finished.returncode}); its output is in {log}")
    return {
        "wall_seconds": round(wall, 1),
        "wall_minutes": round(wall / 60, 2),
        "cpu_seconds": round(children_cpu_seconds() - cpu_before, 1),
        "notebook_seconds": notebook_seconds(clone / "reports" / "notebooks" / "full"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="the fresh clone (default: a new temporary folder)")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv", help="the environment to run with")
    parser.add_argument("--keep", action="store_true", help="keep the clone (and its logs) afterwards")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks" / "reproduce.json")
    args = parser.parse_args(argv)
    if not (args.venv / ".installed").exists():
        raise SystemExit(f"{args.venv} is not a set-up environment: run make setup first")
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reproduce-benchmark-")) / "clone"
    if args.workdir.exists():
        raise SystemExit(f"{args.workdir} exists: remove it or give another --workdir")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(args.workdir)], check=True)
    before = load_average()
    runs = {}
    try:
        for name in ("first_run", "second_run"):
            print(f"{name}: make reproduce in {args.workdir}", flush=True)
            runs[name] = timed_reproduce(args.workdir, args.venv.resolve(), args.workdir.parent / f"{name}.log")
            print(json.dumps(runs[name]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
            print(f"logs: {args.workdir.parent}/first_run.log, second_run.log", flush=True)
    first = runs["first_run"]["wall_minutes"]
    result = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit.stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": before,
        "load_average_after": load_average(),
        "command": "make reproduce (every notebook via papermill on the synthetic default corpus), in a fresh clone",
        "runs": runs,
        "target_first_run_minutes": FIRST_RUN_TARGET_MINUTES,
        "meets_target": first < FIRST_RUN_TARGET_MINUTES,
        "speedup_second_vs_first": round(runs["first_run"]["wall_seconds"] / runs["second_run"]["wall_seconds"], 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
