"""Actor-grouped cross-validation of the neural model on real voices: ``ravdess_neural``.

For every outer fold of actors the model trains on the other actors except one more fold of them, the
validation actors (rotated by the seed), which alone drive early stopping and every choice; it is tested
once on the fold's actors. Out-of-fold probabilities are pooled into the :class:`~emotion_lib.baselines.CVResult`
of the classical experiments, so the same recording path and late fusion apply to both.

Run with ``python -m emotion_lib evaluate --only ravdess_neural`` (3 seeds unless more are given).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from emotion_lib.evaluation.baselines import CVResult
from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.features.normalise import Normaliser, normalise_utterances
from emotion_lib.features.reduction import reduce_utterances
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig
from emotion_lib.sequences.data import SequenceData
from emotion_lib.training.processes import pin_tensorflow_threads, run_in_processes
from emotion_lib.training.trainer import predict_data, train, train_on_schedule

if TYPE_CHECKING:
    import keras

LOG = logging.getLogger(__name__)


@dataclass
class FoldOutcome:
    """One training: test-fold probabilities, validation-actor probabilities and what early stopping chose."""

    test_proba: np.ndarray
    validation_proba: np.ndarray
    info: dict


def normalise_sequences(
    audio: Sequence[np.ndarray], actors: np.ndarray, fit_rows: np.ndarray, mode: str
) -> list[np.ndarray]:
    """Normalise every clip with statistics of the ``fit_rows`` clips (training actors) only.

    ``mode='speaker'``: every actor is standardised with their own clips' statistics, computed without labels
    (label-free adaptation for validation and test actors); ``'global'``: with the training actors' statistics.
    """
    fit = np.flatnonzero(fit_rows)
    normaliser = Normaliser(mode).fit([audio[i] for i in fit], [str(actors[i]) for i in fit])
    if mode == "speaker":
        rest = np.flatnonzero(~np.asarray(fit_rows))
        if len(rest):
            normaliser.adapt([audio[i] for i in rest], [str(actors[i]) for i in rest])
    return [normaliser.transform(a, str(s)) for a, s in zip(audio, actors)]


def validation_fold(n_folds: int, test_fold: int, seed: int) -> int:
    """The fold whose actors validate while ``test_fold`` is tested: another fold, rotated by ``seed``."""
    if n_folds < 3:
        raise ValueError(f"need at least 3 actor folds (test, validation, training), got {n_folds}")
    return (test_fold + 1 + seed % (n_folds - 1)) % n_folds


def train_early_stopped(
    config: ModelConfig, train_data: SequenceData, validation_data: SequenceData
) -> tuple[keras.Model, dict, list[float]]:
    """Train from scratch in a temporary folder (early stopping on ``validation_data``): ``(model, info, schedule)``
    with the early-stopping epoch, the epochs run and the seconds taken in ``info``, and the learning rate of every
    epoch up to the early-stopping one in ``schedule`` (what a refit replays)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="neural_cv_") as folder:
        result = train(
            config,
            train_data,
            validation_data,
            Path(folder) / "run",
            resume=False,
            tensorboard_dir=Path(folder) / "tensorboard",
            progress=False,  # one line per fold (cross_validate_fold), not per epoch
        )
    info = {
        "best_epoch": result.best_epoch + 1,
        "epochs_run": result.epochs_run,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return result.model, info, result.refit_schedule


def train_fold(
    config: ModelConfig,
    train_data: SequenceData,
    validation_data: SequenceData,
    test_data: SequenceData,
    refit_data: SequenceData | None = None,
) -> FoldOutcome:
    """Train from scratch (early stopping on ``validation_data``), then predict the test clips once. With
    ``refit_data`` (``config.refit``: the training and validation clips) a second model is trained on it for the
    early-stopped epochs and schedule (:func:`~emotion_lib.training.trainer.train_on_schedule`) and predicts the
    test clips; the validation probabilities stay the first model's. With ``config.refit_ensemble`` the test
    probabilities are the mean of both models', and ``info["member_test_ua"]`` holds each member's test UA."""
    model, info, schedule = train_early_stopped(config, train_data, validation_data)
    validation_proba = predict_data(model, validation_data)
    test_proba = predict_data(model, test_data)
    if refit_data is not None:
        started = time.perf_counter()
        first_proba, test_proba = test_proba, predict_data(train_on_schedule(config, refit_data, schedule), test_data)
        info["refit_seconds"] = round(time.perf_counter() - started, 1)
        if config.refit_ensemble:
            truth = test_data.labels
            info["member_test_ua"] = {
                name: round(float(balanced_accuracy_score(truth, proba.argmax(axis=1))), 4)
                for name, proba in (("early_stopped", first_proba), ("refit", test_proba))
            }
            test_proba = (first_proba + test_proba) / 2
    return FoldOutcome(test_proba, validation_proba, info)


@dataclass
class FoldScores:
    """One test fold of :func:`neural_cross_validation`: where its clips are, their probabilities, the fold's
    metrics and what was chosen on its validation actors."""

    test: np.ndarray
    proba: np.ndarray
    metrics: dict
    chosen: dict


def cross_validate_fold(
    config: ModelConfig,
    audio: Sequence[np.ndarray],
    labels: np.ndarray,
    actors: np.ndarray,
    folds: list[list[str]],
    fold: int,
    normalise: str,
    classes: list[str],
    utterance: np.ndarray | None = None,
) -> FoldScores:
    """Train on the actors outside test fold ``fold`` and its validation fold (:func:`validation_fold` with
    ``config.seed``), stop early on the validation actors, predict the test fold once (with ``config.refit``, a second
    model trained on the training and validation actors does: :func:`train_fold`; the normalisation statistics stay
    the training actors'). ``utterance`` vectors (one per clip) are normalised like the frames
    (:func:`normalise_utterances`), then, with ``config.utterance_reducer``, reduced by a reducer fitted on the
    training clips (:func:`reduce_utterances`)."""
    test = np.isin(actors, folds[fold])
    validation_actors = folds[validation_fold(len(folds), fold, config.seed)]
    validation = np.isin(actors, validation_actors)
    train_rows = ~(test | validation)
    if not (test.any() and validation.any() and train_rows.any()):
        raise ValueError(f"fold {fold}: the test, validation or training side has no clips")
    if utterance is not None:
        utterance = normalise_utterances(utterance, actors, train_rows, normalise)
        if config.utterance_reducer:
            reducer, components = config.utterance_reducer, config.utterance_components
            utterance = reduce_utterances(utterance, train_rows, labels, reducer, components, config.seed)
    data = SequenceData(
        normalise_sequences(audio, actors, train_rows, normalise),
        np.array([classes.index(label) for label in labels]),
        [f"{actor}/{i}" for i, actor in enumerate(actors)],
        n_classes=len(classes),
        utterance=utterance,
    )
    outcome = train_fold(
        config,
        data.subset(np.flatnonzero(train_rows)),
        data.subset(np.flatnonzero(validation)),
        data.subset(np.flatnonzero(test)),
        data.subset(np.flatnonzero(train_rows | validation)) if config.refit else None,
    )
    names = np.asarray(classes)
    metrics = classification_metrics(labels[test], names[outcome.test_proba.argmax(axis=1)], classes)
    validation_predicted = names[outcome.validation_proba.argmax(axis=1)]
    validation_ua = classification_metrics(labels[validation], validation_predicted, classes)["ua"]
    chosen = {"validation_actors": validation_actors, "validation_ua": round(validation_ua, 4), **outcome.info}
    return FoldScores(test, outcome.test_proba, metrics, chosen)


_FOLD_DATA: dict = {}


def _keep_fold_data(data: dict) -> None:
    """A fold process: pinned TensorFlow threads and the data every fold shares (sent once per process)."""
    pin_tensorflow_threads()
    _FOLD_DATA.update(data)


def _fold_in_process(config: ModelConfig, fold: int) -> FoldScores:
    return cross_validate_fold(config, fold=fold, **_FOLD_DATA)


def cross_validate_folds(
    config: ModelConfig, data: dict, wanted: Sequence[int], workers: int | None
) -> Iterator[tuple[int, FoldScores]]:
    """``(fold, scores)`` of :func:`cross_validate_fold` for every fold in ``wanted`` (``data``: its other arguments),
    as each finishes: in this process (``workers=None``) or in ``workers`` spawned processes with pinned TensorFlow
    threads (:func:`~emotion_lib.training.processes.run_in_processes`), so the outcome does not depend on the cores."""
    if workers is None:
        yield from ((fold, cross_validate_fold(config, fold=fold, **data)) for fold in wanted)
        return
    calls = [(config, fold) for fold in wanted]
    for i, scores in run_in_processes(_fold_in_process, calls, workers, _keep_fold_data, (data,)):
        yield wanted[i], scores


def _log_fold(what: str, scores: FoldScores) -> None:
    """One line per finished fold: its validation and test UA and what early stopping chose."""
    chosen = {key: scores.chosen[key] for key in ("best_epoch", "epochs_run", "seconds")}
    LOG.info(
        "%s: validation UA %.3f, test UA %.3f, %s", what, scores.chosen["validation_ua"], scores.metrics["ua"], chosen
    )


def neural_cross_validation(
    config: ModelConfig,
    audio: Sequence[np.ndarray],
    labels: Sequence[str],
    actors: Sequence,
    folds: Sequence[Sequence],
    seed: int = 0,
    normalise: str = "speaker",
    class_order: Sequence[str] = EMOTIONS,
    name: str = "neural",
    fold_indices: Sequence[int] | None = None,
    utterance: np.ndarray | None = None,
    workers: int | None = None,
) -> CVResult:
    """Actor-grouped CV of ``config`` (with ``seed``) on frame-level features; out-of-fold predictions pooled.

    For test fold ``i`` the validation actors are fold :func:`validation_fold` ``(k, i, seed)``; the model
    trains on the remaining actors, stops early on the validation actors and predicts the test fold once.
    Normalisation statistics come from the training actors (``'speaker'``: each actor's own clips, no labels).
    ``fold_indices`` restricts the test folds (the others are still used for training and validation);
    only their clips are scored. ``chosen_params`` holds, per fold, the validation actors, the early-stopping
    epoch and the validation-actor UA. ``utterance`` (one vector per clip, e.g. functionals) feeds the model's
    utterance input; it is required exactly when ``config.utterance_features`` is set. ``workers``: train the folds
    in this process (``None``) or side by side in that many processes (:func:`cross_validate_folds`).
    """
    labels, actors = np.asarray(labels).astype(str), np.asarray(actors).astype(str)
    classes = list(class_order)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the class order {classes}")
    folds = [sorted(str(a) for a in fold) for fold in folds]
    config = config.replace(seed=seed, n_classes=len(classes), audio_dim=int(np.asarray(audio[0]).shape[1]))
    if bool(config.utterance_features) != (utterance is not None):
        raise ValueError(
            f"utterance vectors are needed exactly when utterance_features is set (it is {config.utterance_features!r})"
        )
    if utterance is not None:
        width = config.utterance_components if config.utterance_reducer else int(np.asarray(utterance).shape[1])
        config = config.replace(utterance_dim=width)
    proba = np.full((len(labels), len(classes)), np.nan)
    fold_of = np.full(len(labels), -1)
    fold_metrics, chosen = [], []
    wanted = list(range(len(folds)) if fold_indices is None else fold_indices)
    data = dict(audio=audio, labels=labels, actors=actors, folds=folds, normalise=normalise, classes=classes)
    data["utterance"] = utterance
    finished = {}
    for fold, scores in cross_validate_folds(config, data, wanted, workers):
        _log_fold(f"{name} seed {seed} fold {fold + 1}/{len(folds)}", scores)
        finished[fold] = scores
    for fold in wanted:
        scores = finished[fold]
        proba[scores.test] = scores.proba
        fold_of[scores.test] = fold
        fold_metrics.append(scores.metrics)
        chosen.append(scores.chosen)
    scored = fold_of >= 0
    present = [c for c in classes if c in set(labels[scored])]
    proba = proba[scored][:, [classes.index(c) for c in present]]
    y_pred = np.asarray(present)[proba.argmax(axis=1)]
    return CVResult(name, present, labels[scored], y_pred, proba, fold_of[scored], fold_metrics, chosen)
