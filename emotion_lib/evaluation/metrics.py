"""Classification metrics: UA, WA, macro-F1, per-class recall, aggregation, intervals, paired comparisons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

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
    "confusion": summed counts, "labels", "n_runs", "runs": {"ua": [one value per run], "wa": [...],
    "macro_f1": [...]}}``; ``runs`` keeps the order of ``runs``, so two systems run over the same folds and seeds
    in the same order can be compared pair by pair (:func:`paired_comparison`).
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
    summary["runs"] = {key: [float(run[key]) for run in runs] for key in SCALAR_METRICS}
    return summary


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of an accuracy of ``correct`` out of ``n`` (wide for the tiny n here)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = correct / n
    centre, half = (p + z * z / (2 * n)), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - half) / (1 + z * z / n)), float((centre + half) / (1 + z * z / n))


NO_DIFFERENCE = "no difference"


def paired_comparison(values: Sequence[float], reference: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Compare paired runs (the same folds and seeds, in the same order) of a system with a reference.

    Returns the mean difference ``values - reference``, its ``confidence`` interval from Student's t over the
    pairs (``scipy.stats.t``; with 3 seeds it is wide: that is the noise) and a verdict: ``"better"`` or
    ``"worse"`` when the interval excludes 0, else :data:`NO_DIFFERENCE`. Identical pairs give an interval of
    zero width; a single pair gives no interval (``nan``) and no verdict but :data:`NO_DIFFERENCE`.
    """
    from scipy import stats

    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if values.shape != reference.shape or values.ndim != 1 or not len(values):
        raise ValueError(f"paired runs must be two equal-length lists, got {values.shape} and {reference.shape}")
    differences = values - reference
    mean, n = float(differences.mean()), len(differences)
    if n < 2:
        low = high = float("nan")
    elif np.all(differences == differences[0]):
        low = high = mean
    else:
        low, high = (float(bound) for bound in stats.t.interval(confidence, n - 1, mean, stats.sem(differences)))
    verdict = "better" if low > 0 else "worse" if high < 0 else NO_DIFFERENCE
    return {"mean": mean, "low": low, "high": high, "n": n, "confidence": confidence, "verdict": verdict}
