"""The speaker-adaptation experiment's test inputs: which clips give the statistics of each condition."""

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.experiments.voice_adaptation import CONDITIONS, DRAWS, condition_inputs, enrolled_variant
from emotion_lib.features.normalise import Normaliser

SPEAKERS = np.array(["a"] * 4 + ["b"] * 4)


def _clips() -> list[np.ndarray]:
    """Clip ``i`` is 10 frames of 2 columns around ``i * 10`` (speaker b's clips far from speaker a's)."""
    rng = np.random.default_rng(0)
    return [i * 10.0 + rng.normal(size=(10, 2)) for i in range(len(SPEAKERS))]


def test_an_enrolled_clip_is_normalised_by_other_clips_of_its_speaker_only():
    frames = _clips()
    variant = enrolled_variant(frames, None, SPEAKERS, 1, np.random.default_rng(0))

    def by(i: int, j: int) -> np.ndarray:
        return (frames[i] - frames[j].mean(axis=0)) / frames[j].std(axis=0)

    for i, normalised in enumerate(variant.frames):
        sources = [j for j in range(len(frames)) if np.allclose(normalised, by(i, j), rtol=1e-4, atol=1e-4)]
        assert len(sources) == 1 and sources[0] != i and SPEAKERS[sources[0]] == SPEAKERS[i]
    assert variant.utterance is None


def test_mean_only_enrolment_keeps_the_training_spread():
    frames, vectors = _clips(), np.arange(16, dtype=float).reshape(8, 2)
    training = Normaliser("global").fit([np.full((3, 2), 100.0), np.full((3, 2), 104.0)])  # std 2 per column
    vector_training = Normaliser("global").fit([np.array([[0.0, 0.0], [10.0, 10.0]])])  # std 5
    variant = enrolled_variant(frames, vectors, SPEAKERS, 3, np.random.default_rng(1), (training, vector_training))
    # speaker a's clips 0-3: the other three clips' mean, divided by the training spread
    expected_first = (frames[0] - np.concatenate(frames[1:4]).mean(axis=0)) / 2.0
    np.testing.assert_allclose(variant.frames[0], expected_first, rtol=1e-5)
    np.testing.assert_allclose(variant.utterance[0], (vectors[0] - vectors[1:4].mean(axis=0)) / 5.0, rtol=1e-5)


def test_every_condition_is_produced_with_its_draws_and_no_test_clip_among_the_training_statistics():
    frames, vectors = _clips(), np.random.default_rng(2).normal(size=(8, 3))
    train_rows, test_rows = SPEAKERS == "a", SPEAKERS == "b"
    produced = list(condition_inputs(frames, vectors, SPEAKERS, train_rows, test_rows, CONDITIONS))
    counts = {c: sum(1 for name, _ in produced if name == c) for c in CONDITIONS}
    assert counts == {c: DRAWS if c.startswith("enrolled_") else 1 for c in CONDITIONS}
    by_name = dict(produced)
    training = by_name["training_statistics"].frames
    # speaker b's clips (around 40-70) seen through speaker a's statistics (around 0-30): far above zero
    assert min(float(x.mean()) for x in training) > 2
    np.testing.assert_allclose(np.mean([x.mean() for x in by_name["all_clips"].frames]), 0, atol=1e-5)
    own = by_name["own_clip"]
    assert all(abs(float(x.mean())) < 1e-5 for x in own.frames)
    np.testing.assert_array_equal(own.utterance, by_name["training_statistics"].utterance)


@pytest.mark.parametrize("k", [2, 16])
def test_enrolment_draws_are_seeded(k):
    frames = _clips()
    first = enrolled_variant(frames, None, SPEAKERS, k, np.random.default_rng([0, k]))
    again = enrolled_variant(frames, None, SPEAKERS, k, np.random.default_rng([0, k]))
    for x, y in zip(first.frames, again.frames):
        np.testing.assert_array_equal(x, y)
