"""Normalisation statistics come from the training sequences only, globally or per speaker."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotion_lib.features.normalise import Normaliser, normalise_utterances


def sequences(offsets, seed=0, dim=3):
    rng = np.random.default_rng(seed)
    return [rng.normal(offset, 2.0, (int(rng.integers(20, 40)), dim)).astype(np.float32) for offset in offsets]


def test_global_statistics_come_from_training_only():
    train, test = sequences([0, 0, 0, 0]), sequences([50, 50], seed=1)
    normaliser = Normaliser("global").fit(train)
    stacked = np.concatenate([normaliser.transform(x) for x in train])
    np.testing.assert_allclose(stacked.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(stacked.std(axis=0), 1, atol=1e-4)
    # the shifted test sequences keep their shift: nothing was learned from them
    assert normaliser.transform(test[0]).mean() > 15


def test_masked_frames_are_ignored_and_zeroed():
    x = np.ones((6, 2), np.float32)
    x[3:] = 1000.0  # frames without a face carry garbage
    mask = np.array([True] * 3 + [False] * 3)
    normaliser = Normaliser("global").fit([x, x + 2], masks=[mask, mask])
    np.testing.assert_allclose(normaliser.mean_, [2, 2])
    out = normaliser.transform(x, mask=mask)
    assert not out[3:].any() and np.allclose(out[:3], -1.0)
    with pytest.raises(ValueError, match="no unmasked frames"):
        Normaliser().fit([x], masks=[np.zeros(6, bool)])


def test_speaker_mode_uses_each_speakers_statistics():
    train = sequences([0, 0, 10, 10])
    speakers = ["a", "a", "b", "b"]
    normaliser = Normaliser("speaker").fit(train, speakers)
    for x, speaker in zip(train, speakers):
        assert abs(normaliser.transform(x, speaker).mean()) < 0.3
    unseen = sequences([30], seed=2)[0]
    global_only = normaliser.transform(unseen, "c")  # unknown speaker: global training statistics
    np.testing.assert_allclose(global_only, Normaliser("global").fit(train).transform(unseen), rtol=1e-5, atol=1e-5)
    normaliser.adapt([unseen], ["c"])  # label-free adaptation to the new speaker
    assert abs(normaliser.transform(unseen, "c").mean()) < 1e-4


def test_state_round_trip_and_errors():
    train = sequences([0, 5])
    normaliser = Normaliser("speaker").fit(train, ["a", "b"])
    restored = Normaliser.from_state(json.loads(json.dumps(normaliser.state())))
    np.testing.assert_allclose(restored.transform(train[1], "b"), normaliser.transform(train[1], "b"), atol=1e-6)
    with pytest.raises(RuntimeError, match="not fitted"):
        Normaliser().transform(train[0])
    with pytest.raises(ValueError, match="one speaker id per sequence"):
        Normaliser("speaker").fit(train)
    with pytest.raises(ValueError, match="mode"):
        Normaliser("per-clip")


def test_utterance_vectors_are_standardised_per_speaker_and_a_lone_clip_gets_the_training_statistics():
    rng = np.random.default_rng(3)
    vectors = np.vstack([rng.normal(5.0, 2.0, (4, 3)), rng.normal(-3.0, 0.5, (5, 3)), [[1.0, 2.0, 3.0]]])
    speakers = ["a"] * 4 + ["b"] * 5 + ["c"]
    fit_rows = np.array([True] * 4 + [False] * 6)  # only speaker a trains
    out = normalise_utterances(vectors, speakers, fit_rows)
    for rows in (slice(0, 4), slice(4, 9)):  # each speaker centred and scaled on their own clips, no labels
        np.testing.assert_allclose(out[rows].mean(axis=0), 0.0, atol=1e-6)
        np.testing.assert_allclose(out[rows].std(axis=0), 1.0, atol=1e-5)
    a_mean, a_std = vectors[:4].mean(axis=0), vectors[:4].std(axis=0)
    np.testing.assert_allclose(out[9], (vectors[9] - a_mean) / a_std, rtol=1e-5)  # one clip: global fallback
    np.testing.assert_allclose(
        normalise_utterances(vectors, speakers, fit_rows, "global"), (vectors - a_mean) / a_std, rtol=1e-5
    )
    with pytest.raises(ValueError, match="one speaker per row"):
        normalise_utterances(vectors, speakers[:-1])
