"""Figures of one clip's features: the openSMILE LLD heat map and the face-embedding mask timeline."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from emotion_lib.features.audio import FRAME_RATE


def plot_lld_heatmap(audio: np.ndarray, feature_names: Sequence[str], title: str = "", ax=None):
    """Heat map of ``(T, D)`` LLDs over time, each descriptor z-scored within the clip."""
    ax = ax or plt.subplots(figsize=(10, 0.22 * audio.shape[1] + 1.5))[1]
    z = (audio - audio.mean(axis=0)) / (audio.std(axis=0) + 1e-8)
    image = ax.imshow(
        z.T,
        aspect="auto",
        cmap="coolwarm",
        vmin=-3,
        vmax=3,
        interpolation="nearest",
        extent=(0, len(audio) / FRAME_RATE, audio.shape[1] - 0.5, -0.5),
    )
    ax.set_yticks(range(len(feature_names)))
    ax.set_yticklabels(feature_names, fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_title(title or "openSMILE LLDs (z-scored per descriptor)")
    ax.figure.colorbar(image, ax=ax, label="z-score", fraction=0.025)
    return ax


def plot_face_timeline(video: np.ndarray, mask: np.ndarray, fps: float, title: str = "", axes=None):
    """Two panels: the per-frame embedding (each dimension z-scored over the clip's face frames, masked frames
    blank) and the face-found mask over time."""
    if axes is None:
        axes = plt.subplots(2, 1, figsize=(10, 4), sharex=True, gridspec_kw={"height_ratios": [3, 1]})[1]
    faces = video[mask]
    z = (video - faces.mean(axis=0)) / (faces.std(axis=0) + 1e-8) if len(faces) else video
    shown = np.where(mask[:, None], z, np.nan)
    duration = len(mask) / fps
    image = axes[0].imshow(
        shown.T,
        aspect="auto",
        cmap="coolwarm",
        vmin=-3,
        vmax=3,
        interpolation="nearest",
        extent=(0, duration, video.shape[1] - 0.5, -0.5),
    )
    axes[0].figure.colorbar(image, ax=axes, label="z-score over the clip", fraction=0.025)
    axes[0].set_ylabel("embedding dim")
    axes[0].set_title(title or f"face embeddings ({mask.sum()} of {len(mask)} frames with a face)")
    edges = np.arange(len(mask) + 1) / fps
    steps = np.append(mask, mask[-1:]).astype(int) if len(mask) else np.zeros(1, int)
    axes[1].step(edges, steps, where="post", color="black")
    for index in np.flatnonzero(~mask):
        axes[1].axvspan(
            edges[index],
            edges[index + 1],
            color="tab:red",
            alpha=0.3,
            label="no face (masked)" if index == np.flatnonzero(~mask)[0] else None,
        )
    axes[1].set_ylim(-0.2, 1.2)
    axes[1].set_yticks([0, 1])
    axes[1].set_yticklabels(["masked", "face"])
    axes[1].set_xlabel("time (s)")
    if not mask.all():
        axes[1].legend(loc="lower right", fontsize=8)
    return axes
