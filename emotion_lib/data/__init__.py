"""Data: corpus loaders (one clip table for every corpus), the synthetic default corpus, speaker-independent
splits, clip tables.
"""

from emotion_lib.data.clips import RAVDESS_ACTORS, actor_table, class_balance, ravdess_speech_clips, subset_clips
from emotion_lib.data.corpora import (
    CLIP_COLUMNS,
    CORPORA,
    CorpusSpec,
    load_ckplus48,
    load_corpus,
    speaker_groups,
)
from emotion_lib.data.load_report import CorpusError, LoadReport
from emotion_lib.data.splits import (
    SplitError,
    assert_speaker_independent,
    attach_splits,
    folds_for,
    read_folds,
    write_splits,
)
from emotion_lib.data.synthetic import ensure_corpus, generate_corpus

__all__ = [
    "CLIP_COLUMNS",
    "CORPORA",
    "CorpusError",
    "CorpusSpec",
    "LoadReport",
    "RAVDESS_ACTORS",
    "SplitError",
    "actor_table",
    "assert_speaker_independent",
    "attach_splits",
    "class_balance",
    "ensure_corpus",
    "folds_for",
    "generate_corpus",
    "load_ckplus48",
    "load_corpus",
    "ravdess_speech_clips",
    "read_folds",
    "speaker_groups",
    "subset_clips",
    "write_splits",
]
