"""Data overview: what a corpus holds, how it is split, and what one clip looks and sounds like."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from emotion_lib.data.corpora import load_corpus
from emotion_lib.labels import EMOTIONS


def class_balance(clips: pd.DataFrame, by: str = "split") -> pd.DataFrame:
    """Clip counts per emotion (rows, in model order) and ``by`` value (columns), with totals."""
    table = pd.crosstab(clips["emotion"], clips[by]).reindex(EMOTIONS, fill_value=0)
    table["total"] = table.sum(axis=1)
    return table


def actor_table(clips: pd.DataFrame) -> pd.DataFrame:
    """One row per actor: split side, fold, clip count and whether video is present."""
    columns = [c for c in ("split", "fold") if c in clips]
    return (
        clips.groupby("actor")
        .agg(
            **{c: (c, "first") for c in columns},
            clips=("clip_id", "size"),
            with_video=("video_path", lambda v: int(v.notna().sum())),
        )
        .reset_index()
    )


def subset_clips(clips: pd.DataFrame, subset: int = 0, seed: int = 0) -> pd.DataFrame:
    """``subset`` clips drawn with ``seed`` (all clips when ``subset`` is 0 or at least the table's size)."""
    if subset <= 0 or subset >= len(clips):
        return clips
    return clips.sample(n=subset, random_state=seed).sort_values("clip_id", kind="stable").reset_index(drop=True)


RAVDESS_ACTORS = tuple(f"{actor:02d}" for actor in range(1, 19))


def ravdess_speech_clips(data_dir: Path, actors: Sequence[str] = RAVDESS_ACTORS, subset: int = 0) -> pd.DataFrame:
    """RAVDESS speech clips of ``actors`` (``subset`` > 0 keeps that many clips per actor, for smoke runs)."""
    clips, _ = load_corpus("ravdess", Path(data_dir) / "ravdess")
    clips = clips[clips["actor"].isin(actors)]
    if subset:
        position = clips.groupby("actor").cumcount()
        clips = clips[position % max(1, len(clips) // (subset * clips["actor"].nunique())) == 0]
    return clips.reset_index(drop=True)
