"""Plots of a corpus: class balance, actor sides, one clip's waveform and frames."""

from __future__ import annotations

import librosa
import librosa.display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from emotion_lib.data.clips import actor_table
from emotion_lib.features.audio import SAMPLE_RATE, load_audio
from emotion_lib.features.video import read_frames
from emotion_lib.labels import EMOTION_COLOURS, EMOTIONS


def plot_class_balance(clips: pd.DataFrame, by: str = "split", title: str = "") -> plt.Figure:
    """Bar chart of clips per emotion, one bar per ``by`` value (e.g. train / validation / test)."""
    figure, axis = plt.subplots(figsize=(8, 3.5))
    sns.countplot(data=clips, x="emotion", hue=by, order=list(EMOTIONS), ax=axis)
    axis.set(title=title or f"Clips per emotion and {by}", xlabel="", ylabel="clips")
    figure.tight_layout()
    return figure


def plot_actor_sides(clips: pd.DataFrame, title: str = "") -> plt.Figure:
    """Which actor is on which side: one coloured cell per actor, proof at a glance that sides are disjoint."""
    actors = actor_table(clips)
    sides = ["train", "validation", "test"]
    grid = np.array([[float(side == s) for s in sides] for side in actors["split"]]).T
    figure, axis = plt.subplots(figsize=(max(6, 0.28 * len(actors)), 2))
    sns.heatmap(grid, cmap="Blues", cbar=False, xticklabels=actors["actor"], yticklabels=sides, ax=axis, linewidths=0.5)
    axis.set(title=title or "Speaker-independent split: each actor on exactly one side", xlabel="actor")
    figure.tight_layout()
    return figure


def plot_clip(clip: pd.Series, n_frames: int = 6) -> plt.Figure:
    """Waveform, log-mel spectrogram and (when the clip has video) a strip of frames of one clip."""
    signal = load_audio(clip["audio_path"])
    has_video = isinstance(clip.get("video_path"), str)
    figure = plt.figure(figsize=(11, 6 if has_video else 4.5))
    rows = 3 if has_video else 2
    colour = EMOTION_COLOURS.get(clip["emotion"], "black")
    wave = figure.add_subplot(rows, 1, 1)
    wave.plot(np.arange(len(signal)) / SAMPLE_RATE, signal, color=colour, linewidth=0.5)
    wave.set(
        title=f"{clip['clip_id']} ({clip['corpus']}, actor {clip['actor']}): {clip['emotion']}",
        xlabel="seconds",
        ylabel="amplitude",
    )
    spectrum = figure.add_subplot(rows, 1, 2)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=signal, sr=SAMPLE_RATE, n_mels=64), ref=np.max)
    librosa.display.specshow(mel, sr=SAMPLE_RATE, x_axis="time", y_axis="mel", ax=spectrum)
    spectrum.set(title="log-mel spectrogram")
    if has_video:
        frames, times = read_frames(clip["video_path"], fps=5)
        picks = np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).astype(int)
        for position, index in enumerate(picks):
            axis = figure.add_subplot(rows, len(picks), 2 * len(picks) + position + 1)
            axis.imshow(frames[index][..., ::-1])
            axis.set_title(f"{times[index]:.1f} s", fontsize=8)
            axis.axis("off")
    figure.tight_layout()
    return figure
