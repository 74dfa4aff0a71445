"""Reducing wide utterance vectors inside cross-validation: fitted on training rows only, the informative columns
kept, clear errors, and the model built for the reduced width."""

import warnings

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.features.reduction import UTTERANCE_REDUCERS, reduce_utterances
from emotion_lib.models.config import ModelConfig

LABELS = np.array(["anger", "sadness"] * 20)


def _vectors(seed: int = 0) -> np.ndarray:
    """40 rows x 30 columns of noise; column 7 separates the two classes."""
    vectors = np.random.default_rng(seed).normal(size=(40, 30))
    vectors[:, 7] += np.where(LABELS == "anger", 4.0, -4.0)
    return vectors


@pytest.mark.parametrize("reducer", sorted(UTTERANCE_REDUCERS))
def test_the_fit_reads_only_the_training_rows(reducer):
    vectors, fit = _vectors(), np.arange(40) < 30
    reduced = reduce_utterances(vectors, fit, LABELS, reducer, 5)
    assert reduced.shape == (40, 5) and reduced.dtype == np.float32
    moved, relabelled = vectors.copy(), LABELS.copy()
    moved[30:] = 100 * np.random.default_rng(1).normal(size=(10, 30))
    relabelled[30:] = relabelled[30:][::-1]
    again = reduce_utterances(moved, fit, relabelled, reducer, 5)
    assert np.array_equal(again[:30], reduced[:30])  # test rows and labels changed: the training rows' output did not
    assert not np.allclose(again[30:], reduced[30:])


def test_anova_keeps_the_column_that_separates_the_classes_and_drops_constant_ones_quietly():
    vectors = _vectors()
    vectors[:, 3] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = reduce_utterances(vectors, np.ones(40, bool), LABELS, "anova", 1)
    assert np.allclose(kept[:, 0], vectors[:, 7])


def test_pca_keeps_the_direction_of_most_variance():
    vectors = _vectors()
    first = reduce_utterances(vectors, np.ones(40, bool), LABELS, "pca", 1)[:, 0]
    assert abs(np.corrcoef(first, vectors[:, 7])[0, 1]) > 0.95


def test_bad_reducers_and_sizes_are_clear_errors():
    vectors, fit = _vectors(), np.arange(40) < 10
    with pytest.raises(ValueError, match="must be one of anova, pca or '', got 'lda'"):
        reduce_utterances(vectors, fit, LABELS, "lda", 3)
    with pytest.raises(ValueError, match="cannot keep 20 pca components of 30 columns, 10 rows"):
        reduce_utterances(vectors, fit, LABELS, "pca", 20)
    with pytest.raises(ValueError, match="needs components >= 1"):
        ModelConfig(utterance_features="ComParE_2016", utterance_reducer="pca")
    with pytest.raises(ValueError, match="set utterance_features"):
        ModelConfig(utterance_reducer="pca", utterance_components=4)


def test_cross_validation_feeds_the_model_the_reduced_width(monkeypatch):
    from emotion_lib.evaluation import neural_cv

    widths = []

    def spy(config, train_data, validation_data, test_data, refit_data=None):
        widths.append((config.utterance_dim, train_data.utterance_dim, test_data.utterance_dim))
        proba = np.full((len(test_data.labels), 6), 1 / 6)
        info = {"best_epoch": 1, "epochs_run": 1, "seconds": 0.0}
        return neural_cv.FoldOutcome(proba, np.full((len(validation_data.labels), 6), 1 / 6), info)

    monkeypatch.setattr(neural_cv, "train_fold", spy)
    frames = [np.zeros((4, 3), np.float32)] * 40
    actors = np.repeat(list("abcdefgh"), 5)
    config = ModelConfig(modalities=("audio",), utterance_features="x", utterance_reducer="pca", utterance_components=6)
    folds = [list("ab"), list("cd"), list("ef"), list("gh")]
    neural_cv.neural_cross_validation(config, frames, LABELS, actors, folds, fold_indices=[0], utterance=_vectors())
    assert widths == [(6, 6, 6)]


def test_the_ridge_baseline_reduces_inside_its_pipeline():
    from emotion_lib.evaluation.baselines import ridge

    assert ridge().name == "ridge" and len(ridge().estimator.steps) == 3  # imputer, scaler, ridge
    spec = ridge(reducer="anova", components=1)
    assert spec.name == "ridge_anova1"
    fitted = spec.estimator.fit(_vectors(), LABELS)
    assert abs(np.corrcoef(fitted[:-1].transform(_vectors())[:, 0], _vectors()[:, 7])[0, 1]) > 0.999
    assert (fitted.predict(_vectors(1)) == LABELS).mean() > 0.9
