"""From a corpus folder to padded train / validation / test sequences (the notebooks' entry)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from emotion_lib.sequences.data import ClipBatches, SequenceData
from emotion_lib.sequences.stream import normalise_clip, stream_split_sequences

if TYPE_CHECKING:
    from emotion_lib.features.store import ExtractionConfig


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
            a, v, m = normalise_clip(features[clip_id], actor, normalisers)
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
    extract_missing: bool = False,
    stream: bool = False,
):
    """Clip table with actor-disjoint splits plus ``{split: SequenceData}`` from the feature cache (notebook 01).

    Returns ``(clips, splits, normaliser_states)``. ``extraction`` is the ``ExtractionConfig`` the cache was
    written with (default: eGeMAPSv02 LLD + dlib at 5 fps); clips without cached features or without audio
    frames (a video without an audio track) are left out, unless ``extract_missing``: then the clips not cached yet
    are extracted first (what notebook 01 does; a complete cache is left as it is).

    ``stream=True`` returns :class:`~emotion_lib.sequences.stream.CachedSequenceData` splits instead, which read each
    batch's clips from the cache when the batch is made (:func:`~emotion_lib.sequences.stream.stream_split_sequences`):
    training memory is then bounded by a few batches, not by the corpus. The same clips, batches and model, the
    normalisation statistics equal up to float rounding. In memory stays the default because a stream reads and
    verifies the cache again every epoch: an epoch of the default model after the first cost 1.41x the CPU time at
    1,000 clips (8.5 s against 6.0 s; first epochs, tracing included: 1.18x at 1,000 clips, 1.30x at 7,442; see
    ``reports/benchmarks/training_memory.json``), for a peak RSS of 0.99 GB instead of 1.42 GB at 7,442 clips.
    With ``extract_missing`` a stream extracts when an entry file is absent (a corrupt entry is skipped with a
    warning, not extracted again).
    """
    from emotion_lib.data.clips import subset_clips
    from emotion_lib.data.corpora import load_corpus
    from emotion_lib.data.splits import attach_splits
    from emotion_lib.data.synthetic import ensure_corpus
    from emotion_lib.features.store import ExtractionConfig, extract_features
    from emotion_lib.paths import CACHE_DIR

    if corpus == "synthetic":
        ensure_corpus(data_dir, seed=seed)
    clips, _ = load_corpus(corpus, data_dir)
    clips = attach_splits(subset_clips(clips, subset, seed), seed=seed)
    extraction, cache_dir = extraction or ExtractionConfig(), cache_dir or CACHE_DIR
    if not stream:
        return _load_in_memory(clips, extraction, cache_dir, normalise, extract_missing, corpus)
    if extract_missing and not all(extraction.clip_path(cache_dir, c).exists() for c in clips.to_dict("records")):
        print(extract_features(clips, extraction, cache_dir=cache_dir))
    data, states = stream_split_sequences(clips, extraction, cache_dir, normalise)
    names = {name for part in data.values() for name in part.names}
    return clips[clips["clip_id"].isin(names)].reset_index(drop=True), data, states


def _load_in_memory(
    clips: pd.DataFrame, extraction, cache_dir, normalise: str | None, extract_missing: bool, corpus: str
) -> tuple[pd.DataFrame, dict[str, SequenceData], dict]:
    """:func:`load_corpus_sequences` holding every clip's features (``stream=False``)."""
    from emotion_lib.features.store import extract_features, load_features

    features = load_features(clips, extraction, cache_dir=cache_dir, missing="skip")
    if extract_missing and len(features) < len(clips):
        print(extract_features(clips, extraction, cache_dir=cache_dir))
        features = load_features(clips, extraction, cache_dir=cache_dir, missing="skip")
    features = {clip_id: f for clip_id, f in features.items() if len(f.audio)}  # a video without audio: no voice
    if not features:
        raise FileNotFoundError(
            f"no cached features for the {len(clips)} {corpus} clips in "
            f"{cache_dir}: run notebooks/01_feature_extraction.ipynb first"
        )
    data, states = split_sequences(clips, features, normalise)
    return clips[clips["clip_id"].isin(list(features))].reset_index(drop=True), data, states


@dataclass
class CorpusSequences:
    """A corpus ready for the model: its clip table, ``{split: SequenceData}`` and what produced them."""

    corpus: str
    clips: pd.DataFrame
    """The clips with cached features, with their ``split`` column."""
    splits: dict[str, ClipBatches]
    normalisers: dict
    """States of the feature normalisers fitted on the training actors (save them with the model)."""
    extraction: ExtractionConfig
    """The feature extraction the cache was written with (save it with the model)."""

    @property
    def test_actors(self) -> list[str]:
        """The actors of the test split, sorted."""
        return sorted(self.clips.loc[self.clips["split"] == "test", "actor"].astype(str).unique())

    def describe(self) -> str:
        """Clips per split, feature widths, the share of training clips with a face and the test actors."""
        train = self.splits["train"]
        video = f"video {train.video_dim}-d" if train.video_dim else "no video"
        text = (
            f"{ {name: len(part) for name, part in self.splits.items()} } clips per split; "
            f"audio {train.audio_dim}-d, {video}; {train.has_video().mean():.0%} of training clips have a face; "
            f"test actors: {', '.join(self.test_actors) or 'none'}"
        )
        if self.corpus == "synthetic":
            text += "\ncorpus = synthetic: every number below is synthetic (not emotion-recognition accuracy)"
        return text


def load_and_describe(
    corpus: str,
    data_dir: str | Path | None = None,
    subset: int = 0,
    seed: int = 0,
    *,
    audio_feature_set: str = "eGeMAPSv02",
    backend: str = "dlib",
    fps: float = 5.0,
    cache_dir: str | Path | None = None,
    normalise: str | None = "global",
    extract_missing: bool = True,
    stream: bool = False,
) -> CorpusSequences:
    """The notebooks' entry: load a corpus's cached features as sequences and print what was loaded.

    Clips not in the cache yet are extracted first (``extract_missing``), so a notebook runs without notebook 01
    having run before it; with a complete cache nothing is extracted.

    Args:
        corpus: ``synthetic``, ``crema-d``, ``ravdess`` or ``savee``.
        data_dir: the corpus folder; empty or None: ``paths.corpus_dir(corpus)``.
        subset: 0 for every clip, N for a seeded sample of N clips.
        seed: the seed of the sample and of the split.
        audio_feature_set, backend, fps: the extraction settings of the cache (notebook 01); ``backend="none"``
            for audio-only features.
        cache_dir: the feature cache; empty or None: ``paths.CACHE_DIR``.
        normalise: the ``Normaliser`` mode fitted on the training actors, or None.
        extract_missing: extract the clips missing from the cache (with the settings above) before loading.
        stream: keep the features in the cache and read each batch's clips when it is made (for corpora whose
            features do not fit in memory; see :func:`load_corpus_sequences`).
    """
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.paths import CACHE_DIR, corpus_dir, parameter_path

    extraction = ExtractionConfig(
        audio_feature_set=audio_feature_set, video_backend=None if backend == "none" else backend, fps=fps
    )
    clips, splits, states = load_corpus_sequences(
        corpus,
        str(corpus_dir(corpus, data_dir)),
        subset,
        seed,
        extraction=extraction,
        cache_dir=parameter_path(cache_dir, CACHE_DIR),
        normalise=normalise,
        extract_missing=extract_missing,
        stream=stream,
    )
    sequences = CorpusSequences(corpus, clips, splits, states, extraction)
    print(sequences.describe())
    return sequences
