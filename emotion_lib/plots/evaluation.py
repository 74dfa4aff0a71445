"""Evaluation plots: confusion heatmaps, attention over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.labels import EMOTIONS


def plot_confusion(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], normalise: bool = False, ax=None, title: str = ""
):
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
        sns.heatmap(
            values,
            annot=True,
            fmt=".2f",
            vmin=0,
            vmax=1,
            cmap="Blues",
            xticklabels=labels,
            yticklabels=labels,
            ax=ax,
            cbar=False,
        )
    else:
        sns.heatmap(
            counts.astype(int),
            annot=True,
            fmt="d",
            cmap="Blues",
            xticklabels=labels,
            yticklabels=labels,
            ax=ax,
            cbar=False,
        )
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


def plot_attention(
    weights: Sequence[float],
    mask: Sequence[bool] | None = None,
    frame_rate: float = 100.0,
    ax=None,
    title: str = "",
    label: str | None = None,
):
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


def plot_confusion_grid(table: pd.DataFrame, row_names: Mapping[str, str], modes: Sequence[str], title: str = ""):
    """Confusion counts per group (rows: ``table['corpus']`` values, named by ``row_names``) and input mode
    (columns: ``table[f'predicted_{mode}']``) against ``table['emotion']``. Returns the figure."""
    import matplotlib.pyplot as plt

    present = [corpus for corpus in row_names if (table["corpus"] == corpus).any()]
    fig, axes = plt.subplots(len(present), len(modes), figsize=(4.6 * len(modes), 4.2 * len(present)), squeeze=False)
    for row, corpus in enumerate(present):
        part = table[table["corpus"] == corpus]
        for col, mode in enumerate(modes):
            metrics = classification_metrics(part["emotion"], part[f"predicted_{mode}"], EMOTIONS)
            plot_confusion(
                metrics["confusion"],
                EMOTIONS,
                ax=axes[row, col],
                title=f"{row_names[corpus]}, {mode.replace('_', '+')}: n={len(part)}, UA {100 * metrics['ua']:.0f} %",
            )
    fig.suptitle(title)
    fig.tight_layout()
    return fig
