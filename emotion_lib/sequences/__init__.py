"""Sequences: padded, masked batches of per-clip features (held in memory or streamed from the feature cache),
feature-level augmentation, missing modalities."""

from emotion_lib.sequences.augment import FeatureAugmenter, waveform_augmenter
from emotion_lib.sequences.corpus import CorpusSequences, load_and_describe, load_corpus_sequences, split_sequences
from emotion_lib.sequences.data import (
    MODALITIES,
    ClipBatches,
    FeatureValueError,
    SequenceData,
    bucket_batches,
    fixed_window,
    pad_sequences,
    random_clips,
)
from emotion_lib.sequences.pairing import PartialSequenceData
from emotion_lib.sequences.stream import CachedSequenceData, stream_split_sequences

__all__ = [
    "CachedSequenceData",
    "ClipBatches",
    "CorpusSequences",
    "FeatureAugmenter",
    "FeatureValueError",
    "MODALITIES",
    "PartialSequenceData",
    "SequenceData",
    "bucket_batches",
    "fixed_window",
    "load_and_describe",
    "load_corpus_sequences",
    "pad_sequences",
    "random_clips",
    "split_sequences",
    "stream_split_sequences",
    "waveform_augmenter",
]
