"""Evaluation: UA / WA / macro-F1 / per-class recall, confusion heatmaps, attention plots, fold/seed
aggregation and the ``reports/metrics.json`` record of every experiment.

UA (unweighted accuracy) is the mean of the per-class recalls over the classes present in ``y_true``;
WA (weighted accuracy) is the plain fraction of correct predictions. Both follow the usual definitions in
speech emotion recognition, so a majority-class predictor scores UA = 1 / n_classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emotion_lib.paths import METRICS_PATH
from emotion_lib.utils import atomic_write_bytes


@dataclass
class ExperimentRecord:
    """One row of ``reports/metrics.json``: what was run, on what, how, and what it measured.

    ``metrics`` is usually :func:`aggregate` over folds (or folds x seeds); ``pooled`` holds the metrics of
    all out-of-fold predictions pooled together (the confusion matrix of the whole corpus).
    """

    name: str
    corpus: str
    protocol: str
    folds: list[list[str]] | int
    seeds: list[int]
    metrics: dict[str, Any]
    command: str
    description: str = ""
    group: str = ""
    synthetic: bool = False
    pooled: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in self.__dict__.items() if key != "name"}
        data["recorded_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return data


def load_metrics(path: Path | str = METRICS_PATH) -> dict[str, Any]:
    """The experiments recorded in ``path`` (``{"experiments": {name: record}}``); empty when absent."""
    path = Path(path)
    if not path.exists():
        return {"experiments": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    data.setdefault("experiments", {})
    return data


def record_experiment(record: ExperimentRecord, path: Path | str = METRICS_PATH) -> None:
    """Add or replace ``record`` in the metrics file, keeping every other experiment (locked, atomic)."""

    def update(data: dict[str, Any]) -> None:
        data["experiments"][record.name] = _jsonable(record.to_dict())
        data.get("not_run", {}).pop(record.name, None)

    _update_metrics(path, update)


def _update_metrics(path: Path | str, change: Callable[[dict[str, Any]], None]) -> None:
    """Read, ``change`` in place and atomically rewrite the metrics file under an exclusive lock (a file in the
    temporary folder named after ``path``), so parallel runs never lose a record."""
    import fcntl
    import hashlib
    import tempfile

    path = Path(path).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"emotion_lib_metrics_{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load_metrics(path)
        change(data)
        atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def record_not_run(name: str, reason: str, command: str, path: Path | str = METRICS_PATH) -> None:
    """Note in the metrics file that experiment ``name`` could not run here, and why (shown in the results)."""
    _update_metrics(
        path, lambda data: data.setdefault("not_run", {}).__setitem__(name, {"reason": reason, "command": command})
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
