"""Actor-grouped CV of the neural model: sides actor-disjoint, test folds unseen, determinism, coverage."""

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.evaluation.neural_cv import neural_cross_validation, normalise_sequences, validation_fold
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig
from emotion_lib.sequences.data import random_clips
from emotion_lib.training.trainer import train

TINY = ModelConfig(
    modalities=("audio",),
    audio_dim=5,
    conv_filters=6,
    rnn_units=4,
    attention_units=4,
    dense_units=8,
    batch_size=8,
    epochs=2,
    patience=1,
    conv_strides=2,
    encoder="transformer",  # the folds' machinery does not depend on the encoder; a quicker graph to trace
    transformer_ff=8,
)
ACTORS = [f"{a:02d}" for a in range(1, 10)]
FOLDS = [ACTORS[0:3], ACTORS[3:6], ACTORS[6:9]]


@pytest.fixture(scope="module")
def corpus():
    data = random_clips(54, seed=3, audio_dim=5, audio_frames=(20, 40), no_video_every=1)
    return data.audio, np.asarray(EMOTIONS)[data.labels], np.array([ACTORS[i % 9] for i in range(54)])


@pytest.fixture()
def sides(monkeypatch):
    """Record the actors of the training and validation data every call of ``train`` sees."""
    seen = []
    real = train

    def spy(config, train_data, val_data, out_dir, **kwargs):
        seen.append(({n.split("/")[0] for n in train_data.names}, {n.split("/")[0] for n in val_data.names}))
        return real(config, train_data, val_data, out_dir, **kwargs)

    monkeypatch.setattr("emotion_lib.evaluation.neural_cv.train", spy)
    return seen


def test_validation_fold_is_never_the_test_fold():
    for n_folds in (3, 6):
        for seed in range(8):
            chosen = [validation_fold(n_folds, fold, seed) for fold in range(n_folds)]
            assert all(v != fold and 0 <= v < n_folds for fold, v in enumerate(chosen))
    assert validation_fold(6, 0, 0) != validation_fold(6, 0, 1)
    with pytest.raises(ValueError, match="at least 3"):
        validation_fold(2, 0, 0)


def test_speaker_normalisation_uses_each_actors_own_frames_and_global_only_training_rows():
    rng = np.random.default_rng(0)
    audio = [rng.normal(loc=3 * i, size=(10, 2)) for i in range(4)]
    actors = np.array(["a", "a", "b", "b"])
    fit = np.array([True, True, False, False])
    speaker = normalise_sequences(audio, actors, fit, "speaker")
    assert np.allclose(np.vstack(speaker[2:]).mean(axis=0), 0, atol=1e-5)
    moved = [*audio[:2], audio[2] + 100, audio[3]]
    glob, glob_moved = (normalise_sequences(a, actors, fit, "global") for a in (audio, moved))
    assert np.allclose(glob[0], glob_moved[0]) and not np.allclose(glob[2], glob_moved[2])


def test_cross_validation_sides_coverage_and_determinism(corpus, sides):
    audio, labels, actors = corpus
    first = neural_cross_validation(TINY, audio, labels, actors, FOLDS, seed=0)
    assert len(sides) == len(FOLDS)
    for fold, (train_actors, val_actors) in enumerate(sides):
        test_actors = set(FOLDS[fold])
        assert not (train_actors & val_actors) and not (train_actors & test_actors) and not (val_actors & test_actors)
        assert train_actors | val_actors | test_actors == set(ACTORS)
        assert first.chosen_params[fold]["validation_actors"] == sorted(val_actors)
    # every clip predicted exactly once, by the model of the fold holding its actor
    assert len(first.y_true) == len(labels) and np.array_equal(first.y_true, labels)
    assert np.array_equal(first.fold_of, [next(i for i, f in enumerate(FOLDS) if a in f) for a in actors])
    assert first.proba.shape == (len(labels), len(EMOTIONS)) and np.isfinite(first.proba).all()
    assert np.allclose(first.proba.sum(axis=1), 1, atol=1e-4)
    assert len(first.fold_metrics) == len(FOLDS)

    # the same fold again, with the test actors' labels scrambled: identical probabilities and early stopping,
    # so the run is deterministic and the test fold's labels reach neither training nor model selection
    scrambled = labels.copy()
    test = np.isin(actors, FOLDS[0])
    scrambled[test] = np.roll(labels[test], 5)
    assert (scrambled != labels).any()
    again = neural_cross_validation(TINY, audio, scrambled, actors, FOLDS, seed=0, fold_indices=[0])
    assert np.array_equal(again.proba, first.proba[first.fold_of == 0])
    assert _selection(again.chosen_params[0]) == _selection(first.chosen_params[0])

    other_seed = neural_cross_validation(TINY, audio, labels, actors, FOLDS, seed=1, fold_indices=[0])
    assert np.array_equal(other_seed.fold_of, first.fold_of[first.fold_of == 0])
    assert other_seed.chosen_params[0]["validation_actors"] != first.chosen_params[0]["validation_actors"]
    assert not np.allclose(other_seed.proba, first.proba[first.fold_of == 0])


def _selection(params: dict) -> dict:
    """What model selection decided (everything but the wall-clock time)."""
    return {key: value for key, value in params.items() if key != "seconds"}


def test_folds_trained_side_by_side_give_what_one_process_gives(corpus):
    audio, labels, actors = corpus
    one = neural_cross_validation(TINY, audio, labels, actors, FOLDS, seed=0, fold_indices=[0, 2], workers=1)
    two = neural_cross_validation(TINY, audio, labels, actors, FOLDS, seed=0, fold_indices=[0, 2], workers=2)
    assert np.array_equal(one.proba, two.proba) and np.array_equal(one.fold_of, two.fold_of)
    assert set(one.fold_of) == {0, 2}
    assert [_selection(p) for p in one.chosen_params] == [_selection(p) for p in two.chosen_params]


def test_speakers_in_no_fold_train_every_fold_and_are_never_scored(corpus, sides):
    """How another corpus joins the training sides (the voice study's ``EXTRA_TRAINING_CORPORA``)."""
    audio, labels, actors = corpus
    extra = random_clips(8, seed=4, audio_dim=5, audio_frames=(20, 40), no_video_every=1)
    more_actors = np.concatenate([actors, ["other:x"] * 4 + ["other:y"] * 4])
    more_labels = np.concatenate([labels, np.asarray(EMOTIONS)[extra.labels]])
    result = neural_cross_validation(
        TINY, list(audio) + list(extra.audio), more_labels, more_actors, FOLDS, seed=0, fold_indices=[0, 1]
    )
    assert all({"other:x", "other:y"} <= train_actors for train_actors, _ in sides) and len(sides) == 2
    assert not any("other" in validation for _, validation in sides)
    assert len(result.y_true) == np.isin(actors, FOLDS[0] + FOLDS[1]).sum() and set(result.fold_of) == {0, 1}


def test_a_refit_trains_again_on_training_and_validation_actors_and_predicts_the_test_fold(corpus, sides, monkeypatch):
    from emotion_lib.training import trainer

    audio, labels, actors = corpus
    refits, real = [], trainer.train_on_schedule

    def spy(config, data, learning_rates):
        refits.append(({n.split("/")[0] for n in data.names}, list(learning_rates)))
        return real(config, data, learning_rates)

    monkeypatch.setattr("emotion_lib.evaluation.neural_cv.train_on_schedule", spy)
    plain = neural_cross_validation(TINY, audio, labels, actors, FOLDS, seed=0, fold_indices=[1])
    refit = neural_cross_validation(TINY.replace(refit=True), audio, labels, actors, FOLDS, seed=0, fold_indices=[1])
    (train_actors, validation_actors), (refit_actors, schedule) = sides[1], refits[0]
    assert len(refits) == 1 and refit_actors == train_actors | validation_actors
    assert not refit_actors & set(FOLDS[1])  # the test actors never reach the refit
    assert len(schedule) == refit.chosen_params[0]["best_epoch"] and schedule[0] == TINY.learning_rate
    assert refit.chosen_params[0]["validation_ua"] == plain.chosen_params[0]["validation_ua"]
    assert not np.allclose(refit.proba, plain.proba)
    again = neural_cross_validation(TINY.replace(refit=True), audio, labels, actors, FOLDS, seed=0, fold_indices=[1])
    assert np.array_equal(again.proba, refit.proba)
    # the pair keeps the early-stopped model beside the refitted one: the mean of the two runs' test probabilities
    pair_config = TINY.replace(refit=True, refit_ensemble=True)
    pair = neural_cross_validation(pair_config, audio, labels, actors, FOLDS, seed=0, fold_indices=[1])
    np.testing.assert_allclose(pair.proba, (plain.proba + refit.proba) / 2, atol=1e-6)
    members = pair.chosen_params[0]["member_test_ua"]
    assert members == {
        "early_stopped": round(plain.fold_metrics[0]["ua"], 4),
        "refit": round(refit.fold_metrics[0]["ua"], 4),
    }
    with pytest.raises(ValueError, match="set refit"):
        TINY.replace(refit_ensemble=True)
    with pytest.raises(ValueError, match="a schedule of at least one epoch"):
        real(TINY, random_clips(6, seed=1, audio_dim=5, audio_frames=(20, 40), no_video_every=1), [])
