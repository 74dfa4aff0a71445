"""From a corpus folder to padded train / validation / test sequences (the notebooks' entry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from emotion_lib.sequences.data import SequenceData


def split_sequences(
    clips: pd.DataFrame, features: Mapping[str, Any], normalise: str | None = "global", split_column: str = "split"
) -> tuple[dict[str, SequenceData], dict]:
    """``{split: SequenceData}`` from cached per-clip features, normalised with training statistics only.

    ``clips`` is a clip table with ``split_column`` (see ``emotion_lib.splits.attach_splits``); ``features``
    maps clip ids to objects with ``audio``, ``video`` and ``video_mask`` (``features.store.load_features``);
    clips without features are left out. ``normalise`` is a ``Normaliser`` mode (``"global"``, ``"speaker"``)
    or ``None``; audio and face embeddings get separate normalisers fitted on the ``train`` rows. Returns
    the splits and the normalisers' states (save them with the model for real-time use).
    """
    from emotion_lib.features.normalise import Normaliser
    from emotion_lib.labels import emotion_index

    rows = clips[clips["clip_id"].isin(list(features))]
    if rows.empty:
        raise ValueError("none of the clips has cached features: run feature extraction first")
    train_rows = rows[rows[split_column] == "train"]
    if train_rows.empty:
        raise ValueError(f"no training clips with features in column {split_column!r}")
    states: dict = {}
    normalisers: dict = {}
    if normalise:
        train = [features[c] for c in train_rows["clip_id"]]
        speakers = train_rows["actor"].astype(str).tolist()
        normalisers["audio"] = Normaliser(normalise).fit([f.audio for f in train], speakers)
        with_video = [(f, s) for f, s in zip(train, speakers) if f.video is not None and np.any(f.video_mask)]
        if with_video:
            normalisers["video"] = Normaliser(normalise).fit(
                [f.video for f, _ in with_video], [s for _, s in with_video], [f.video_mask for f, _ in with_video]
            )
        states = {k: n.state() for k, n in normalisers.items()}
    splits = {}
    for split, part in rows.groupby(split_column, sort=False):
        audio, video, masks = [], [], []
        for clip_id, actor in zip(part["clip_id"], part["actor"].astype(str)):
            clip = features[clip_id]
            a, v, m = clip.audio, clip.video, clip.video_mask
            if "audio" in normalisers:
                a = normalisers["audio"].transform(a, actor)
            if v is not None and "video" in normalisers:
                v = normalisers["video"].transform(v, actor, m)
            audio.append(a)
            video.append(v)
            masks.append(m)
        labels = [emotion_index(e) for e in part["emotion"]]
        splits[str(split)] = SequenceData(audio, labels, part["clip_id"].tolist(), video, masks)
    return splits, states


def load_corpus_sequences(
    corpus: str,
    data_dir: str,
    subset: int = 0,
    seed: int = 0,
    extraction=None,
    cache_dir=None,
    normalise: str | None = "global",
):
    """Clip table with actor-disjoint splits plus ``{split: SequenceData}`` from the feature cache (notebook 01).

    Returns ``(clips, splits, normaliser_states)``. ``extraction`` is the ``ExtractionConfig`` the cache was
    written with (default: eGeMAPSv02 LLD + dlib at 5 fps); clips without cached features are left out.
    """
    from emotion_lib.data.clips import subset_clips
    from emotion_lib.data.corpora import load_corpus
    from emotion_lib.data.splits import attach_splits
    from emotion_lib.data.synthetic import ensure_corpus
    from emotion_lib.features.store import ExtractionConfig, load_features
    from emotion_lib.paths import CACHE_DIR

    if corpus == "synthetic":
        ensure_corpus(data_dir, seed=seed)
    clips, _ = load_corpus(corpus, data_dir)
    clips = attach_splits(subset_clips(clips, subset, seed), seed=seed)
    features = load_features(clips, extraction or ExtractionConfig(), cache_dir=cache_dir or CACHE_DIR, missing="skip")
    if not features:
        raise FileNotFoundError(
            f"no cached features for the {len(clips)} {corpus} clips in "
            f"{cache_dir or CACHE_DIR}: run notebooks/01_feature_extraction.ipynb first"
        )
    data, states = split_sequences(clips, features, normalise)
    return clips[clips["clip_id"].isin(list(features))].reset_index(drop=True), data, states
