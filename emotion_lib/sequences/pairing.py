"""Sequences with a modality missing, and class-matched pairing of unimodal corpora."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emotion_lib.sequences.data import MODALITIES, FeatureValueError, SequenceData


@dataclass
class PartialSequenceData(SequenceData):
    """A :class:`SequenceData` whose clips may also lack audio: ``audio_present[i]`` False masks all of clip
    ``i``'s audio frames (its attention context is then zero, like a clip without video)."""

    audio_present: np.ndarray | None = None

    def __post_init__(self):
        super().__post_init__()
        present = np.ones(len(self), bool) if self.audio_present is None else self.audio_present
        self.audio_present = np.asarray(present, bool).reshape(-1)
        if len(self.audio_present) != len(self):
            raise FeatureValueError(f"{len(self.audio_present)} audio_present flags for {len(self)} clips")

    def subset(self, indices: Sequence[int]) -> PartialSequenceData:
        part = super().subset(indices)
        return PartialSequenceData(
            part.audio,
            part.labels,
            part.names,
            part.video,
            part.video_masks,
            self.video_dim,
            self.n_classes,
            part.utterance,
            audio_present=self.audio_present[[int(i) for i in indices]],
        )

    def make_batch(
        self,
        indices: Sequence[int],
        modalities: Sequence[str] = MODALITIES,
        augment=None,
        rng: np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        inputs = super().make_batch(indices, modalities, augment, rng)
        if "audio" in inputs:
            present = self.audio_present[np.asarray(indices, dtype=int)].astype(np.float32)
            inputs["audio_mask"] = inputs["audio_mask"] * present[:, None]
            inputs["audio"] = inputs["audio"] * present[:, None, None]
        return inputs


def split_frames(rows: np.ndarray, lengths: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-sequence ``(frames (T, D) float32, face mask (T,))`` from stacked frame rows; NaN rows (no face)
    become zeros with mask False."""
    out, start = [], 0
    for length in lengths:
        block = rows[start : start + length]
        mask = ~np.isnan(block).all(axis=1)
        out.append((np.where(mask[:, None], np.nan_to_num(block), 0.0).astype(np.float32), mask))
        start += length
    return out


def pair_by_class(voice_labels: np.ndarray, face_labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each voice, the index of a face of the same class; a class without faces (neutral) draws from all.

    Faces of a class are dealt in rounds of fresh permutations, so each is used about equally often.
    """
    voice_labels, face_labels = np.asarray(voice_labels), np.asarray(face_labels)
    if not len(face_labels):
        raise ValueError("no face sequences to pair the voices with")
    chosen = np.empty(len(voice_labels), dtype=int)
    for label in np.unique(voice_labels):
        voices = np.flatnonzero(voice_labels == label)
        pool = np.flatnonzero(face_labels == label)
        pool = pool if len(pool) else np.arange(len(face_labels))
        rounds = -(-len(voices) // len(pool))
        chosen[voices] = np.concatenate([rng.permutation(pool) for _ in range(rounds)])[: len(voices)]
    return chosen


@dataclass
class Unimodal:
    """Normalised single-modality examples: sequences, frame masks (video) and integer labels."""

    names: list[str]
    sequences: list[np.ndarray]
    labels: np.ndarray
    masks: list[np.ndarray] | None = None


def assemble(voices: Unimodal, faces: Unimodal, seed: int, voices_alone: bool) -> PartialSequenceData:
    """Faces alone (audio masked), class-matched voice-face pairs and, with ``voices_alone``, voices alone."""
    audio_dim = voices.sequences[0].shape[1]
    pair = pair_by_class(voices.labels, faces.labels, np.random.default_rng(seed))
    audio = list(voices.sequences) + [np.zeros((1, audio_dim), np.float32)] * len(faces.names)
    video = [faces.sequences[j] for j in pair] + list(faces.sequences)
    masks = [faces.masks[j] for j in pair] + list(faces.masks)
    names = [f"pair:{v}+{faces.names[j]}" for v, j in zip(voices.names, pair)] + [f"face:{f}" for f in faces.names]
    labels = np.concatenate([voices.labels, faces.labels])
    present = np.r_[np.ones(len(voices.names), bool), np.zeros(len(faces.names), bool)]
    if voices_alone:
        audio += list(voices.sequences)
        video += [None] * len(voices.names)
        masks += [None] * len(voices.names)
        names += [f"voice:{v}" for v in voices.names]
        labels = np.concatenate([labels, voices.labels])
        present = np.r_[present, np.ones(len(voices.names), bool)]
    return PartialSequenceData(audio, labels, names, video, masks, faces.sequences[0].shape[1], audio_present=present)
