"""Evaluation: UA / WA / macro-F1 / per-class recall, confusion heatmaps, attention plots, fold/seed
aggregation and the ``reports/metrics.json`` record of every experiment.

UA (unweighted accuracy) is the mean of the per-class recalls over the classes present in ``y_true``;
WA (weighted accuracy) is the plain fraction of correct predictions. Both follow the usual definitions in
speech emotion recognition, so a majority-class predictor scores UA = 1 / n_classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from emotion_lib.paths import REPORTS_DIR
from emotion_lib.utils import atomic_write_bytes

METRICS_PATH = REPORTS_DIR / "metrics.json"
SCALAR_METRICS = ("ua", "wa", "macro_f1")


def _as_labels(y_true: Sequence, y_pred: Sequence, labels: Sequence | None) -> tuple[np.ndarray, np.ndarray, list]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("cannot score an empty set of predictions")
    if labels is None:
        labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    return y_true, y_pred, list(labels)


def per_class_recall(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> dict[str, float]:
    """Recall of every class in ``labels`` that occurs in ``y_true`` (classes absent from ``y_true`` are left out)."""
    y_true, y_pred, labels = _as_labels(y_true, y_pred, labels)
    recalls = {}
    for label in labels:
        support = y_true == label
        if support.any():
            recalls[str(label)] = float(np.mean(y_pred[support] == label))
    return recalls


def unweighted_accuracy(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> float:
    """UA: the mean per-class recall over the classes present in ``y_true``."""
    return float(np.mean(list(per_class_recall(y_true, y_pred, labels).values())))


def weighted_accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """WA: the fraction of correct predictions."""
    y_true, y_pred, _ = _as_labels(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred))


def classification_metrics(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> dict[str, Any]:
    """UA, WA, macro-F1 (over the classes present in ``y_true``), per-class recall and the confusion counts.

    ``confusion`` is a list of rows (true class) of columns (predicted class) in the order of ``labels``.
    """
    y_true, y_pred, labels = _as_labels(y_true, y_pred, labels)
    present = [label for label in labels if (y_true == label).any()]
    return {
        "ua": unweighted_accuracy(y_true, y_pred, labels),
        "wa": weighted_accuracy(y_true, y_pred),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class_recall": per_class_recall(y_true, y_pred, labels),
        "labels": [str(label) for label in labels],
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": int(y_true.size),
    }


def aggregate(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and (population) standard deviation of UA, WA, macro-F1 and per-class recall over runs.

    ``runs`` are outputs of :func:`classification_metrics` (one per fold, seed or fold x seed). Confusion
    counts are summed. Returns ``{"ua": {"mean", "std"}, ..., "per_class_recall": {cls: {"mean", "std"}},
    "confusion": summed counts, "labels", "n_runs"}``.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("nothing to aggregate: no runs")
    summary: dict[str, Any] = {}
    for key in SCALAR_METRICS:
        values = np.array([run[key] for run in runs], dtype=float)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
    classes = sorted({cls for run in runs for cls in run["per_class_recall"]})
    summary["per_class_recall"] = {}
    for cls in classes:
        values = np.array([run["per_class_recall"][cls] for run in runs if cls in run["per_class_recall"]])
        summary["per_class_recall"][cls] = {"mean": float(values.mean()), "std": float(values.std())}
    if all("confusion" in run for run in runs) and len({tuple(run["labels"]) for run in runs}) == 1:
        summary["labels"] = runs[0]["labels"]
        summary["confusion"] = np.sum([np.asarray(run["confusion"]) for run in runs], axis=0).tolist()
    summary["n_runs"] = len(runs)
    return summary


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
        data["recorded_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
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
    _update_metrics(path, lambda data: data.setdefault("not_run", {}).__setitem__(
        name, {"reason": reason, "command": command}))


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


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], normalise: bool = False, ax=None,
                   title: str = ""):
    """A seaborn heatmap of a confusion matrix (rows: true class, columns: predicted class).

    With ``normalise`` each row is divided by its total, so the diagonal shows per-class recall.
    Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    counts = np.asarray(confusion, dtype=float)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not match {len(labels)} labels")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2))
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        sns.heatmap(values, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="Blues", xticklabels=labels,
                    yticklabels=labels, ax=ax, cbar=False)
    else:
        sns.heatmap(counts.astype(int), annot=True, fmt="d", cmap="Blues", xticklabels=labels, yticklabels=labels,
                    ax=ax, cbar=False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("row-normalised (recall)" if normalise else "counts"))
    return ax


def plot_confusion_pair(confusion: Sequence[Sequence[int]], labels: Sequence[str], title: str = ""):
    """Counts and row-normalised confusion heatmaps side by side; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4))
    plot_confusion(confusion, labels, normalise=False, ax=axes[0])
    plot_confusion(confusion, labels, normalise=True, ax=axes[1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_attention(weights: Sequence[float], mask: Sequence[bool] | None = None, frame_rate: float = 100.0,
                   ax=None, title: str = "", label: str | None = None):
    """Attention weights over time for one clip (padded frames, ``mask == False``, are dropped).

    Returns the matplotlib ``Axes``; call again with the same ``ax`` to overlay another modality.
    """
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=float).reshape(-1)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        if mask.shape != weights.shape:
            raise ValueError(f"mask of length {mask.size} does not match {weights.size} attention weights")
        weights = weights[mask]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.4))
    times = np.arange(weights.size) / frame_rate
    ax.plot(times, weights, label=label)
    ax.fill_between(times, weights, alpha=0.25)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("attention weight")
    if title:
        ax.set_title(title)
    if label:
        ax.legend(loc="upper right")
    return ax


def _pct(summary: Mapping[str, float] | None) -> str:
    if not summary:
        return "-"
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def results_markdown(experiments: Mapping[str, Mapping[str, Any]], targets: Sequence[Mapping[str, Any]] = (),
                     heading_level: int = 2, not_run: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """Markdown tables of the recorded experiments (one table per group), the target check and the experiments
    that could not run here (``not_run``: name -> reason and command).

    Synthetic experiments are labelled "synthetic (not emotion-recognition accuracy)". Every row carries the
    command that reproduces it.
    """
    hashes = "#" * heading_level
    if not experiments:
        return "*No experiment recorded yet: run `make evaluate`.*\n"
    lines = []
    if targets:
        lines += [f"{hashes} Targets", "", "| target | system | UA % | compared with | UA % | gain (points) | status |",
                  "|---|---|---|---|---|---|---|"]
        for row in targets:
            reference = f"`{row['reference']}`" if row["reference"] else "-"
            ref_ua = f"{100 * row['reference_ua']:.1f}" if row["reference_ua"] is not None else "-"
            gain = f"{100 * row['gain']:+.1f}" if row["gain"] is not None else "-"
            status = "met" if row["met"] else f"missed: {row['shortfall']}"
            lines.append(f"| {row['target']} | `{row['system']}` | {100 * row['ua']:.1f} | {reference} | {ref_ua} | "
                         f"{gain} | {status} |")
        lines.append("")
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, record in experiments.items():
        groups.setdefault(record.get("group") or name.split("/")[0], []).append((name, record))
    for group, rows in groups.items():
        first = rows[0][1]
        synthetic = any(record.get("synthetic") or record.get("corpus") == "synthetic" for _, record in rows)
        title = f"{group}" + (" — synthetic (not emotion-recognition accuracy)" if synthetic else "")
        lines += [f"{hashes} {title}", "", f"Corpus: {first.get('corpus', '?')}. Protocol: {first.get('protocol', '?')}."
                  f" Seeds: {', '.join(map(str, first.get('seeds', [])))}.", "",
                  "| experiment | what | UA % | WA % | macro-F1 % | runs | command |", "|---|---|---|---|---|---|---|"]
        for name, record in rows:
            metrics = record["metrics"]
            lines.append(f"| `{name}` | {record.get('description', '')} | {_pct(metrics.get('ua'))} | "
                         f"{_pct(metrics.get('wa'))} | {_pct(metrics.get('macro_f1'))} | {metrics.get('n_runs', '-')} "
                         f"| `{record.get('command', '')}` |")
        lines.append("")
    if not_run:
        lines += [f"{hashes} Not run here", "", "| experiment | why | command |", "|---|---|---|"]
        lines += [f"| `{name}` | {item['reason']} | `{item['command']}` |" for name, item in sorted(not_run.items())]
        lines.append("")
    lines.append("UA: mean per-class recall; WA: accuracy; mean ± standard deviation over folds (x seeds).")
    return "\n".join(lines) + "\n"


def clip_attention(model, data, index: int, audio_frame_rate: float = 100.0, video_fps: float = 5.0
                   ) -> dict[str, tuple[np.ndarray, float]]:
    """Attention weights over time of one clip of ``data`` (a ``SequenceData``) for each modality of ``model``.

    Returns ``{modality: (weights (T',), frames per second of those weights)}``; audio weights are over the
    Conv1D output steps, so their rate is ``audio_frame_rate / stride`` (the ratio of input to output length).
    """
    from emotion_lib.model import attention_model

    modalities = tuple(name for name in ("audio", "video") if name in model.input)
    batch = data.make_batch([index], modalities)
    outputs = attention_model(model)(batch, training=False)
    found = {}
    for modality, weights in outputs.items():
        weights = np.asarray(weights)[0]
        frames = batch[modality].shape[1]
        rate = (audio_frame_rate if modality == "audio" else video_fps) * len(weights) / max(frames, 1)
        found[modality] = (weights, rate)
    return found
