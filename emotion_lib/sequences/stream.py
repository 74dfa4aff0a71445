"""Sequences streamed from the feature cache: a batch's clips are read, normalised and padded when it is made.

:func:`stream_split_sequences` reads every cache entry of a clip table once, one at a time: it verifies the entry (as
loading does), keeps the clip's shape facts (frames, widths, whether a face was found) and, for the training clips,
merges the frames into running moments (:class:`~emotion_lib.features.normalise.StreamingFit`), so the normalisers
get the statistics :meth:`~emotion_lib.features.normalise.Normaliser.fit` gives (up to float rounding) without the
sequences being held. Each split is a :class:`CachedSequenceData`: lengths and labels are known up front, so batches
are bucketed by length as before, and making a batch reads only its clips from the cache. Batch order, padding,
masks, augmentation draws and normalisation are those of :class:`~emotion_lib.sequences.data.SequenceData` (the same
code makes the batches), so training on a stream gives the model training in memory gives. Memory holds a few
batches (the tf.data prefetch) and one small record per clip, not the corpus's features.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from emotion_lib.features.cache import CacheEntryError, read_entry
from emotion_lib.features.normalise import Normaliser, StreamingFit
from emotion_lib.labels import EMOTIONS
from emotion_lib.sequences.data import ClipBatches, FeatureValueError, check_features, check_video, feature_widths

if TYPE_CHECKING:
    from emotion_lib.features.store import ExtractionConfig

Arrays = tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"]
"""One clip's ``(audio, video or None, video mask or None)``."""


class CachedClip(NamedTuple):
    """What a stream keeps about one clip: where its cache entry is and the facts known without reading it again."""

    name: str
    path: Path
    speaker: str
    label: int
    audio_shape: tuple[int, int]
    video_shape: tuple[int, int] | None
    has_face: bool


def normalise_clip(arrays: Arrays, speaker: str, normalisers: Mapping[str, Normaliser]) -> Arrays:
    """A clip's arrays normalised for ``speaker`` by the ``audio`` and ``video`` normalisers present (faceless
    video frames become zeros); a modality without a normaliser is returned as it is."""
    audio, video, mask = arrays
    if "audio" in normalisers:
        audio = normalisers["audio"].transform(audio, speaker)
    if video is not None and "video" in normalisers:
        video = normalisers["video"].transform(video, speaker, mask)
    return audio, video, mask


def checked_arrays(arrays: Mapping[str, np.ndarray], name: str) -> Arrays:
    """Clip ``name``'s ``(audio, video, video mask)`` from its cache entry's arrays, checked like ``SequenceData``
    checks them (:class:`FeatureValueError` naming the clip for NaN/inf values or a wrong shape)."""
    audio = check_features(arrays["audio"], name, "audio")
    video, mask = arrays.get("video"), arrays.get("video_mask")
    if video is not None:
        video, mask = check_video(video, mask, name)
    return audio, video, mask


class CachedSequenceData(ClipBatches):
    """Clips whose features stay in the feature cache until a batch needs them; batches like ``SequenceData``'s.

    ``clips`` are the facts of :func:`stream_split_sequences`; ``normalisers`` (by modality) are applied to each clip
    as it is read. Every entry was verified when the facts were gathered; one that changes afterwards raises
    :class:`~emotion_lib.features.cache.CacheEntryError` naming its file when its batch is made.
    """

    def __init__(
        self,
        clips: Sequence[CachedClip],
        normalisers: Mapping[str, Normaliser] | None = None,
        n_classes: int = len(EMOTIONS),
    ) -> None:
        self.clips = list(clips)
        self.normalisers = dict(normalisers or {})
        self.n_classes = n_classes
        self.names = [clip.name for clip in self.clips]
        self.labels = np.array([clip.label for clip in self.clips], dtype=np.int64)
        self.utterance = None
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= n_classes):
            bad = int(np.flatnonzero((self.labels < 0) | (self.labels >= n_classes))[0])
            raise FeatureValueError(f"clip {self.names[bad]}: label {self.labels[bad]} outside 0..{n_classes - 1}")
        self.audio_dim, self.video_dim = feature_widths(
            self.names, [clip.audio_shape for clip in self.clips], [clip.video_shape for clip in self.clips]
        )

    def __len__(self) -> int:
        return len(self.clips)

    def clip(self, index: int) -> Arrays:
        """Clip ``index`` read from the cache and normalised (what ``SequenceData`` would hold for it)."""
        facts = self.clips[index]
        audio, video, mask = checked_arrays(read_entry(facts.path), facts.name)
        if audio.shape != facts.audio_shape or (None if video is None else video.shape) != facts.video_shape:
            raise CacheEntryError(
                facts.path,
                f"clip {facts.name}'s arrays changed shape since the cache was scanned "
                f"(audio {audio.shape}, video {None if video is None else video.shape}); load the sequences again",
            )
        return normalise_clip((audio, video, mask), facts.speaker, self.normalisers)

    def lengths(self) -> np.ndarray:
        """Audio frames per clip (from the facts: nothing is read)."""
        return np.array([clip.audio_shape[0] for clip in self.clips])

    def shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...] | None]]:
        """Per clip: the shape of its audio array and of its video array (``None`` without video)."""
        return [(clip.audio_shape, clip.video_shape) for clip in self.clips]

    def has_video(self) -> np.ndarray:
        """Per clip: True when it has at least one frame with a face."""
        return np.array([clip.has_face for clip in self.clips], dtype=bool)

    def validate(self) -> None:
        """Check that every clip's cache entry is still there (values were checked when the facts were gathered and
        are checked again as each clip is read); raise :class:`FileNotFoundError` naming the first missing file."""
        for clip in self.clips:
            if not clip.path.is_file():
                raise FileNotFoundError(f"{clip.path}: the cache entry of clip {clip.name} is gone")

    def subset(self, indices: Sequence[int]) -> CachedSequenceData:
        """The clips at ``indices`` as a new stream with the same normalisers."""
        return CachedSequenceData([self.clips[int(i)] for i in indices], self.normalisers, self.n_classes)


def _scan(records: list[dict], paths: list[Path], fits: dict[str, StreamingFit], split_column: str) -> list[tuple]:
    """``(record, facts)`` of every clip whose entry exists, verifies and has audio frames, reading one entry at a
    time and merging the training clips into ``fits``; entries that do not verify are skipped with one warning."""
    from emotion_lib.labels import emotion_index

    kept, corrupt = [], []
    for record, path in zip(records, paths):
        name, speaker = str(record["clip_id"]), str(record["actor"])
        if not path.exists():
            continue
        try:
            arrays = read_entry(path)
        except CacheEntryError as error:
            corrupt.append(str(error))
            continue
        if not len(arrays["audio"]):  # a video without an audio track: no voice to train on
            continue
        audio, video, mask = checked_arrays(arrays, name)
        if record[split_column] == "train" and fits:
            fits["audio"].add(audio, speaker)
            if video is not None and mask.any():
                fits["video"].add(video, speaker, mask)
        video_shape = None if video is None else video.shape
        has_face = video is not None and bool(mask.any())
        label = emotion_index(record["emotion"])
        kept.append((record, CachedClip(name, path, speaker, label, audio.shape, video_shape, has_face)))
    if corrupt:
        warnings.warn(
            f"skipped {len(corrupt)} cached entr{'y' if len(corrupt) == 1 else 'ies'} that did not verify (run "
            f"extract_features again to replace them): {'; '.join(corrupt)}",
            stacklevel=3,
        )
    return kept


def stream_split_sequences(
    clips: pd.DataFrame,
    extraction: ExtractionConfig,
    cache_dir: Path | str,
    normalise: str | None = "global",
    split_column: str = "split",
    normalisers: Mapping[str, Mapping] | None = None,
) -> tuple[dict[str, CachedSequenceData], dict]:
    """``{split: CachedSequenceData}`` streamed from the cache entries of ``clips``: :func:`split_sequences` without
    holding the features (the same clips, order, labels and normalisation, up to float rounding of the statistics).

    Clips without a cache entry, with one that does not verify (a warning lists them) or without audio frames are
    left out, as ``load_features(..., missing='skip')`` and ``load_corpus_sequences`` leave them out. The ``audio``
    and ``video`` normalisers (mode ``normalise``, or none) are fitted on the ``train`` rows in the same single pass
    over the entries; ``normalisers`` (states by modality, e.g. a bundle's) are used instead when given.
    Returns the splits and the normalisers' states.

    Args:
        clips: a clip table with ``clip_id``, ``corpus``, ``actor``, ``emotion`` and ``split_column``.
        extraction: the settings the cache was written with (they locate the entries).
        cache_dir: the feature cache.
    """
    records = clips.to_dict("records")
    paths = [extraction.clip_path(cache_dir, record) for record in records]
    fits = {}
    if normalise and normalisers is None:
        fits = {"audio": StreamingFit(normalise), "video": StreamingFit(normalise)}
    kept = _scan(records, paths, fits, split_column)
    if not kept:
        raise ValueError("none of the clips has cached features: run feature extraction first")
    if not any(record[split_column] == "train" for record, _ in kept):
        raise ValueError(f"no training clips with features in column {split_column!r}")
    if normalisers is not None:
        fitted = {name: Normaliser.from_state(state) for name, state in normalisers.items()}
    else:
        fitted = {name: fit.normaliser() for name, fit in fits.items() if fit.sequences}
    groups: dict[str, list[CachedClip]] = {}
    for record, facts in kept:
        if not pd.isna(record[split_column]):  # like groupby, which leaves out rows without a split
            groups.setdefault(str(record[split_column]), []).append(facts)
    splits = {split: CachedSequenceData(part, fitted) for split, part in groups.items()}
    return splits, {name: normaliser.state() for name, normaliser in fitted.items()}
