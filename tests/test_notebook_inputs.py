"""A notebook that needs the feature cache makes it itself when notebook 01 has not run (``load_and_describe``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import emotion_lib  # noqa: F401  (openSMILE before anything else)
from emotion_lib.data import corpora, splits
from emotion_lib.features import store
from emotion_lib.sequences.corpus import load_and_describe


def _clips() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(4)],
            "corpus": "savee",
            "actor": ["a", "b", "c", "d"],
            "emotion": ["anger", "happiness", "sadness", "neutral"],
            "split": ["train", "train", "validation", "test"],
        }
    )


def _patch(monkeypatch, cache: dict) -> list:
    calls = []
    monkeypatch.setattr(corpora, "load_corpus", lambda corpus, folder: (_clips(), None))
    monkeypatch.setattr(splits, "attach_splits", lambda clips, seed: clips)

    def load(clips, config, cache_dir, missing):
        return {c: cache[c] for c in clips["clip_id"] if c in cache}

    def extract(clips, config, cache_dir):
        calls.append(list(clips["clip_id"]))
        for c in clips["clip_id"]:
            cache[c] = store.ClipFeatures(audio=np.ones((5, 3)), video=None, video_mask=None)
        return "extracted"

    monkeypatch.setattr(store, "load_features", load)
    monkeypatch.setattr(store, "extract_features", extract)
    return calls


def test_missing_features_are_extracted_before_loading(monkeypatch, tmp_path):
    calls = _patch(monkeypatch, {})
    data = load_and_describe("savee", tmp_path, backend="none", cache_dir=tmp_path)
    assert calls == [["c0", "c1", "c2", "c3"]]
    assert {name: len(part) for name, part in data.splits.items()} == {"train": 2, "validation": 1, "test": 1}


def test_a_complete_cache_is_not_extracted_again(monkeypatch, tmp_path):
    cache = {f"c{i}": store.ClipFeatures(audio=np.ones((5, 3)), video=None, video_mask=None) for i in range(4)}
    calls = _patch(monkeypatch, cache)
    load_and_describe("savee", tmp_path, backend="none", cache_dir=tmp_path)
    assert calls == []
