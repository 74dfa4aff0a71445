"""Before-and-after plots of the augmentations (notebook 02)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

AUDIO_FRAMES_PER_S = 100


def plot_feature_variants(variants: dict[str, np.ndarray], title: str) -> plt.Figure:
    """One heat map of normalised LLDs (frames x descriptors) per variant, stacked on a shared time axis."""
    fig, axes = plt.subplots(len(variants), 1, figsize=(9, 2 * len(variants)), sharex=True, squeeze=False)
    for ax, (name, x) in zip(axes[:, 0], variants.items()):
        ax.imshow(x.T, aspect="auto", origin="lower", cmap="magma", vmin=-3, vmax=3, interpolation="nearest")
        ax.set_title(f"{name}: {len(x)} frames", fontsize=10)
        ax.set_ylabel("LLD")
    axes[-1, 0].set_xlabel("frame (10 ms)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_mask_tempo(masks: dict[str, tuple[np.ndarray, int]], fps: float) -> plt.Figure:
    """Face masks (1 = face found) of each variant, titled with its face and audio frame counts.

    ``masks`` maps a variant name to ``(face mask, number of audio frames)``.
    """
    fig, axes = plt.subplots(len(masks), 1, figsize=(9, 1.6 * len(masks)), sharex=True, squeeze=False)
    for ax, (name, (mask, n_audio)) in zip(axes[:, 0], masks.items()):
        ax.step(np.arange(len(mask)) / fps, mask.astype(int), where="post")
        ax.set_ylim(-0.2, 1.2)
        ax.set_ylabel("face")
        ax.set_title(
            f"{name}: {len(mask)} face frames, {n_audio} audio frames ({n_audio / AUDIO_FRAMES_PER_S:.2f} s)",
            fontsize=10,
        )
    axes[-1, 0].set_xlabel("time (s) at the original frame rate")
    fig.tight_layout()
    return fig


def plot_spectrograms(waves: dict[str, np.ndarray], sample_rate: int = 16_000, max_hz: float = 4000) -> plt.Figure:
    """A spectrogram per waveform, stacked on a shared time axis."""
    fig, axes = plt.subplots(len(waves), 1, figsize=(9, 2.25 * len(waves)), sharex=True, squeeze=False)
    for ax, (name, wave) in zip(axes[:, 0], waves.items()):
        ax.specgram(wave + 1e-9, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma")
        ax.set_ylim(0, max_hz)
        ax.set_ylabel("Hz")
        ax.set_title(f"{name}: {len(wave) / sample_rate:.2f} s", fontsize=10)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig
