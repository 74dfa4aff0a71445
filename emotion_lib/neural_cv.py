"""Actor-grouped cross-validation of the neural model on real voices (issue 5): ``ravdess_neural``.

For every outer fold of actors the model trains on the other actors except one more fold of them, the
validation actors (rotated by the seed), which alone drive early stopping and every choice; it is tested
once on the fold's actors. Out-of-fold probabilities are pooled into the :class:`~emotion_lib.baselines.CVResult`
of the classical experiments, so the same recording path and late fusion apply to both.

Run with ``python -m emotion_lib.experiments --only ravdess_neural`` (3 seeds unless more are given).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from emotion_lib.baselines import BASELINES, CVResult, grouped_cross_validation, late_fusion_of, speaker_normalise
from emotion_lib.evaluation import classification_metrics
from emotion_lib.experiments import (Context, _over_seeds, _record, ablation_variants, actor_folds,
                                     audio_features, audio_functionals, load_ravdess, neural_seeds)
from emotion_lib.features.normalize import Normalizer
from emotion_lib.labels import EMOTIONS
from emotion_lib.model import ModelConfig
from emotion_lib.sequences import SequenceData

LOG = logging.getLogger(__name__)

FRAME_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
"""Frame-level openSMILE sets: eGeMAPSv02 LLDs (25) and ComParE_2016 LLDs + deltas (130), 100 frames/s."""

RAVDESS_NEURAL_BASE = ModelConfig(modalities=("audio",), conv_strides=4, epochs=30, patience=6)
"""The main system's model, fixed before any RAVDESS run: the default ``ModelConfig`` (Conv1D -> BiLSTM ->
attention, focal loss, augmentation) audio-only, with a Conv1D stride of 4 (25 steps/s) to fit the time budget."""

AUDIO_ABLATIONS = ("pooling", "loss", "augmentation", "encoder", "modalities", "cross_modal")
"""The ablations of :data:`emotion_lib.experiments.ABLATIONS`; those needing video are returned as not applicable."""


@dataclass
class FoldOutcome:
    """One training: test-fold probabilities, validation-actor probabilities and what early stopping chose."""

    test_proba: np.ndarray
    validation_proba: np.ndarray
    info: dict


def normalise_sequences(audio: Sequence[np.ndarray], actors: np.ndarray, fit_rows: np.ndarray, mode: str
                        ) -> list[np.ndarray]:
    """Normalise every clip with statistics of the ``fit_rows`` clips (training actors) only.

    ``mode='speaker'``: every actor is standardised with their own clips' statistics, computed without labels
    (label-free adaptation for validation and test actors); ``'global'``: with the training actors' statistics.
    """
    fit = np.flatnonzero(fit_rows)
    normaliser = Normalizer(mode).fit([audio[i] for i in fit], [str(actors[i]) for i in fit])
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


def train_fold(config: ModelConfig, train_data: SequenceData, validation_data: SequenceData,
               test_data: SequenceData) -> FoldOutcome:
    """Train from scratch (early stopping on ``validation_data``), then predict the test clips once."""
    from emotion_lib.training import predict_data, train

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="neural_cv_") as folder:
        result = train(config, train_data, validation_data, Path(folder) / "run", resume=False,
                       tensorboard_dir=Path(folder) / "tensorboard")
        test_proba = predict_data(result.model, test_data)
        validation_proba = predict_data(result.model, validation_data)
    info = {"best_epoch": result.best_epoch + 1, "epochs_run": result.epochs_run,
            "seconds": round(time.perf_counter() - started, 1)}
    return FoldOutcome(test_proba, validation_proba, info)


def neural_cross_validation(config: ModelConfig, audio: Sequence[np.ndarray], labels: Sequence[str],
                            actors: Sequence, folds: Sequence[Sequence], seed: int = 0, normalize: str = "speaker",
                            class_order: Sequence[str] = EMOTIONS, name: str = "neural",
                            fold_indices: Sequence[int] | None = None) -> CVResult:
    """Actor-grouped CV of ``config`` (with ``seed``) on frame-level features; out-of-fold predictions pooled.

    For test fold ``i`` the validation actors are fold :func:`validation_fold` ``(k, i, seed)``; the model
    trains on the remaining actors, stops early on the validation actors and predicts the test fold once.
    Normalisation statistics come from the training actors (``'speaker'``: each actor's own clips, no labels).
    ``fold_indices`` restricts the test folds (the others are still used for training and validation);
    only their clips are scored. ``chosen_params`` holds, per fold, the validation actors, the early-stopping
    epoch and the validation-actor UA.
    """
    labels, actors = np.asarray(labels).astype(str), np.asarray(actors).astype(str)
    classes = list(class_order)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the class order {classes}")
    folds = [sorted(str(a) for a in fold) for fold in folds]
    index = np.array([classes.index(label) for label in labels])
    config = config.replace(seed=seed, n_classes=len(classes), audio_dim=int(np.asarray(audio[0]).shape[1]))
    proba = np.full((len(labels), len(classes)), np.nan)
    fold_of = np.full(len(labels), -1)
    fold_metrics, chosen = [], []
    for fold in (range(len(folds)) if fold_indices is None else fold_indices):
        test = np.isin(actors, folds[fold])
        validation_actors = folds[validation_fold(len(folds), fold, seed)]
        validation = np.isin(actors, validation_actors)
        train = ~(test | validation)
        if not (test.any() and validation.any() and train.any()):
            raise ValueError(f"fold {fold}: the test, validation or training side has no clips")
        data = SequenceData(normalise_sequences(audio, actors, train, normalize), index,
                            [f"{actor}/{i}" for i, actor in enumerate(actors)], n_classes=len(classes))
        outcome = train_fold(config, data.subset(np.flatnonzero(train)), data.subset(np.flatnonzero(validation)),
                             data.subset(np.flatnonzero(test)))
        proba[test] = outcome.test_proba
        fold_of[test] = fold
        names = np.asarray(classes)
        predicted = names[outcome.test_proba.argmax(axis=1)]
        fold_metrics.append(classification_metrics(labels[test], predicted, classes))
        validation_ua = classification_metrics(labels[validation], names[outcome.validation_proba.argmax(axis=1)],
                                               classes)["ua"]
        chosen.append({"validation_actors": validation_actors, "validation_ua": round(validation_ua, 4),
                       **outcome.info})
        LOG.info("%s seed %d fold %d: validation UA %.3f, test UA %.3f, %s", name, seed, fold, validation_ua,
                 fold_metrics[-1]["ua"], outcome.info)
    scored = fold_of >= 0
    present = [c for c in classes if c in set(labels[scored])]
    proba = proba[scored][:, [classes.index(c) for c in present]]
    y_pred = np.asarray(present)[proba.argmax(axis=1)]
    return CVResult(name, present, labels[scored], y_pred, proba, fold_of[scored], fold_metrics, chosen)


# ------------------------------------------------------------------------------------------ RAVDESS run
def _restrict(result: CVResult, folds: Sequence[int]) -> CVResult:
    """The part of a CV result on the test ``folds`` only (the same clips an ablation run on those folds scores)."""
    rows = np.isin(result.fold_of, list(folds))
    kept = [i for i, fold in enumerate(np.unique(result.fold_of)) if fold in set(folds)]
    return dataclasses.replace(result, y_true=result.y_true[rows], y_pred=result.y_pred[rows],
                               proba=result.proba[rows], fold_of=result.fold_of[rows],
                               fold_metrics=[result.fold_metrics[i] for i in kept],
                               chosen_params=[result.chosen_params[i] for i in kept])


def run_ravdess_neural(ctx: Context, ablation_folds: int = 2) -> list[dict]:
    """The neural model on RAVDESS actors 01-18 (6 folds of 3 actors), 3 seeds; late fusion; ablations.

    Records, in this order (each as soon as it is done): ``ravdess_neural/egemaps/speaker`` (the main system:
    eGeMAPS LLDs), ``ravdess_neural/late_fusion_neural_egemaps_compare/speaker`` (equal-weight mean of the main
    system's and the two classical baselines' speaker-normalised out-of-fold probabilities; no weight is
    fitted), ``ravdess_neural/<ablation>/<variant>`` (the audio-applicable ablations, 3 seeds on the first
    ``ablation_folds`` test folds, beside the main system on the same folds) and ``ravdess_neural/compare/speaker``
    (ComParE_2016 LLDs + deltas). With ``ctx.quick``: 4 clips per actor, 3 folds of 6 actors, 1 seed, 2 epochs,
    a smaller model, two ablations on one fold, no ComParE run.
    """
    seeds = neural_seeds(ctx)
    ctx = dataclasses.replace(ctx, seeds=seeds)
    base = RAVDESS_NEURAL_BASE.replace(epochs=2, rnn_units=16, conv_filters=16) if ctx.quick else RAVDESS_NEURAL_BASE
    ablation_folds = 1 if ctx.quick else ablation_folds
    clips = load_ravdess(ctx.data_dir, subset=4 if ctx.quick else 0)
    labels, actors = clips["emotion"].to_numpy(dtype=object), clips["actor"].to_numpy(dtype=object)
    folds = actor_folds("ravdess", sorted(set(actors)), n_folds=3 if ctx.quick else None)
    group, out = "ravdess_neural", []
    protocol = (f"actor-grouped {len(folds)}-fold CV over RAVDESS actors 01-18; per fold and seed the validation "
                "actors (early stopping) are another fold of the training side, rotated by the seed; "
                "per-speaker normalisation of the frame features")

    def cross_validate(config: ModelConfig, key: str, name: str, fold_indices=None) -> dict[int, CVResult]:
        audio, kept = audio_features(clips, FRAME_SETS[key], "lld", ctx.cache_dir)
        if list(kept["clip_id"]) != list(clips["clip_id"]):
            raise RuntimeError(f"{FRAME_SETS[key]} frame features are missing for some RAVDESS clips")
        return {seed: neural_cross_validation(config, audio, labels, actors, folds, seed, "speaker", EMOTIONS, name,
                                              fold_indices) for seed in seeds}

    def record(name: str, per_seed: dict[int, CVResult], description: str, extra: dict,
               protocol_text: str = protocol) -> None:
        result = _over_seeds(lambda seed: dataclasses.replace(per_seed[seed]), seeds)
        out.append(_record(ctx, f"{group}/{name}", group, "ravdess", protocol_text, folds, result, description,
                           {"config": dataclasses.asdict(extra.pop("config", base)), **extra}))

    main = cross_validate(base, "egemaps", "neural_egemaps")
    record("egemaps/speaker", main, "Conv1D-BiLSTM-attention (focal loss, augmentation) on eGeMAPSv02 frame "
           "features (25 LLDs), speaker normalisation", {"role": "system", "feature_set": "eGeMAPSv02"})

    classical = classical_baselines(ctx, clips, folds)
    fused = {seed: late_fusion_of([main[seed], *classical], "late_fusion_neural_egemaps_compare") for seed in seeds}
    record("late_fusion_neural_egemaps_compare/speaker", fused,
           "late fusion (mean probabilities, equal weights) of the eGeMAPS-frame neural model, eGeMAPS functionals + "
           "RBF SVM and ComParE functionals + ridge, speaker normalisation", {"role": "system"})

    tested = list(range(ablation_folds))
    ablation_protocol = protocol + f"; ablations: test folds {', '.join(map(str, tested))} of {len(folds)} only"
    ablations = ("pooling", "cross_modal") if ctx.quick else AUDIO_ABLATIONS
    for ablation, variant, config, reason in ablation_variants(base, ablations, has_video=False):
        if config is None:
            out.append({"name": f"{group}/{ablation}/{variant}", "ua": None, "ua_std": None,
                        "note": f"not applicable: {reason}"})
            continue
        per_seed = {seed: _restrict(main[seed], tested) for seed in seeds} if config == base else \
            cross_validate(config, "egemaps", f"{ablation}_{variant}", tested)
        record(f"{ablation}/{variant}", per_seed, f"{ablation}: {variant} (eGeMAPS frames, audio only)",
               {"role": "ablation", "ablation": ablation, "variant": variant, "config": config}, ablation_protocol)

    if not ctx.quick:
        record("compare/speaker", cross_validate(base, "compare", "neural_compare"),
               "Conv1D-BiLSTM-attention (focal loss, augmentation) on ComParE_2016 frame features (65 LLDs + "
               "deltas), speaker normalisation", {"role": "variant", "feature_set": "ComParE_2016"})
    return out


def classical_baselines(ctx: Context, clips: pd.DataFrame, folds: Sequence[Sequence[str]]) -> list[CVResult]:
    """eGeMAPS + RBF SVM and ComParE + ridge (speaker-normalised functionals, ``ravdess_voice``'s baselines)
    cross-validated again on the neural model's folds and rows. Neither has a seed-dependent step (the SVM's
    probabilities come from grouped sigmoid calibration), so they are run once, with the first seed."""
    actors, labels = clips["actor"].to_numpy(dtype=object), clips["emotion"].to_numpy(dtype=object)
    results = []
    for name in ("egemaps_svm", "compare_linear"):
        feature_set, factory = BASELINES[name]
        values, kept = audio_functionals(clips, feature_set, ctx.cache_dir)
        if list(kept["clip_id"]) != list(clips["clip_id"]):
            raise RuntimeError(f"{feature_set} functionals are missing for some RAVDESS clips")
        results.append(grouped_cross_validation(factory(ctx.seeds[0]), speaker_normalise(values, actors), labels,
                                                actors, folds, ctx.inner_folds, EMOTIONS))
    return results
