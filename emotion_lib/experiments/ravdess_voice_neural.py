"""The voice model study: the neural voice recipe against the classical baselines, chosen without the test folds.

Two experiment groups:

- ``ravdess_voice_neural_selection``: the recipes of :data:`CANDIDATES` on the training side of outer fold 0 only
  (the actors of folds 1-5 of the RAVDESS actor folds; inner actor-grouped folds of those actors, validation
  actors for early stopping rotated by the seed as in ``ravdess_neural``), 3 seeds; no outer test fold is ever
  scored here. The candidate with the highest mean UA on the inner test fold is :data:`VOICE_RECIPE`.
- ``ravdess_voice_neural``: :data:`VOICE_RECIPE` on :data:`VOICE_FRAME_SET` frames run once over the 6 outer
  folds x 3 seeds (the seed ensemble, i.e. the mean of the three seeds' probabilities, is the one neural model;
  the single seeds are recorded beside it), its equal-weight late fusion with the two classical baselines of the
  same folds, and RAVDESS -> SAVEE (trained on RAVDESS actors, tested on the four SAVEE speakers, per-speaker
  normalisation without labels).

Run with ``python -m emotion_lib evaluate --only ravdess_voice_neural_selection`` (or ``ravdess_voice_neural``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.data.corpora import load_corpus
from emotion_lib.evaluation.baselines import CVResult, late_fusion_of
from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.evaluation.neural_cv import neural_cross_validation
from emotion_lib.experiments.common import (
    Context,
    actor_folds,
    audio_features,
    audio_functionals,
    neural_seeds,
    over_seeds,
    record_result,
)
from emotion_lib.experiments.ravdess_neural import classical_baselines
from emotion_lib.experiments.voice_recipes import CANDIDATES, EXTRA_TRAINING_CORPORA, VOICE_FRAME_SET, VOICE_RECIPE
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig
from emotion_lib.utils import default_workers

LOG = logging.getLogger(__name__)

GROUP = "ravdess_voice_neural"
SELECTION_GROUP = "ravdess_voice_neural_selection"

SELECTION_INNER_FOLDS = (0,)
"""Inner test folds of the selection (indices into the five folds of outer fold 0's training actors)."""


def _frames(clips: pd.DataFrame, ctx: Context, corpus: str, frame_set: str = VOICE_FRAME_SET) -> list[np.ndarray]:
    """The ``frame_set`` frames of every clip; an error names the corpus when some are missing."""
    frames, kept = audio_features(clips, frame_set, "lld", ctx.cache_dir)
    if list(kept["clip_id"]) != list(clips["clip_id"]):
        raise RuntimeError(f"{frame_set} frame features are missing for some {corpus} clips")
    return frames


def _utterances(clips: pd.DataFrame, ctx: Context, config: ModelConfig, corpus: str) -> np.ndarray | None:
    """The per-clip functionals ``config.utterance_features`` (``None`` when that input is off), unnormalised."""
    if not config.utterance_features:
        return None
    rows, kept = audio_functionals(clips, config.utterance_features, ctx.cache_dir)
    if list(kept["clip_id"]) != list(clips["clip_id"]):
        raise RuntimeError(f"{config.utterance_features} functionals are missing for some {corpus} clips")
    return rows


def _corpus_clips(ctx: Context, corpus: str) -> pd.DataFrame:
    """The clips of another corpus in ``ctx.data_dir`` (every 20th with ``ctx.quick``)."""
    table, _ = load_corpus(corpus, Path(ctx.data_dir) / corpus)
    return table.iloc[::20].reset_index(drop=True) if ctx.quick else table


def _with_corpora(
    ctx: Context, config: ModelConfig, clips: tuple, corpora: Sequence[str], frame_set: str = VOICE_FRAME_SET
) -> tuple:
    """``clips = (frames, labels, actors, utterance vectors or None)`` with every clip of ``corpora`` appended
    (``frame_set`` frames; speakers named ``<corpus>:<speaker>``, so that none is in an actor fold)."""
    frames, labels, actors, utterance = clips
    for corpus in corpora:
        table = _corpus_clips(ctx, corpus)
        frames = list(frames) + _frames(table, ctx, corpus, frame_set)
        labels = np.concatenate([labels, table["emotion"].to_numpy(dtype=object)])
        actors = np.concatenate([actors, (f"{corpus}:" + table["actor"]).to_numpy(dtype=object)])
        if utterance is not None:
            utterance = np.vstack([utterance, _utterances(table, ctx, config, corpus)])
    return frames, labels, actors, utterance


def _refit_text(config: ModelConfig) -> str:
    """The protocol's words for ``config.refit`` and ``config.refit_ensemble`` (empty without a refit)."""
    if not config.refit:
        return ""
    tested = (
        "the mean probabilities of the early-stopped and the retrained model are tested"
        if config.refit_ensemble
        else "the retrained model is tested"
    )
    return (
        "; each early-stopped model is then retrained from scratch on its training and validation actors for its "
        f"early-stopped epochs (same learning-rate schedule), and {tested}"
    )


def _inputs(config: ModelConfig, frame_set: str = VOICE_FRAME_SET) -> str:
    """What the recipe reads, for descriptions: the frames and, with the utterance input, its functionals."""
    utterance = f" + {config.utterance_features} functionals per clip" if config.utterance_features else ""
    return f"{frame_set} frames{utterance}"


def _setup(ctx: Context) -> tuple[Context, pd.DataFrame, list[list[str]]]:
    """Neural seeds, the RAVDESS clips (4 per actor with ``ctx.quick``) and the actor folds."""
    ctx = dataclasses.replace(ctx, seeds=neural_seeds(ctx))
    clips = ravdess_speech_clips(ctx.data_dir, subset=4 if ctx.quick else 0)
    folds = actor_folds("ravdess", sorted(set(clips["actor"])), n_folds=4 if ctx.quick else None)
    return ctx, clips, folds


def quick_config(config: ModelConfig, ctx: Context) -> ModelConfig:
    """``config`` for a smoke run (2 epochs, 8 units, at most 8 reduced utterance columns) when ``ctx.quick``."""
    small = {"epochs": 2, "rnn_units": 8, "conv_filters": 8}
    return config.replace(**small, utterance_components=min(config.utterance_components, 8)) if ctx.quick else config


def seeds_side_by_side(run: Callable[[int], CVResult], seeds: Sequence[int]) -> dict[int, CVResult]:
    """``{seed: run(seed)}`` with up to :func:`~emotion_lib.utils.default_workers` seeds running at once, for runs
    that train one model at a time in their own process (``workers=1``: one TensorFlow thread, so the outcome is
    the same however many run side by side)."""
    with ThreadPoolExecutor(min(default_workers(), len(seeds))) as threads:
        return dict(zip(seeds, threads.map(run, seeds)))


def seed_ensemble(per_seed: dict[int, CVResult], name: str) -> CVResult:
    """One model from several seeds' CV runs on the same rows: the mean of their probabilities."""
    return dataclasses.replace(late_fusion_of(list(per_seed.values()), name), chosen_params=per_seed_chosen(per_seed))


def per_seed_chosen(per_seed: dict[int, CVResult]) -> list[dict]:
    """Per fold, what each seed's training chose (validation actors, early-stopping epoch, seconds)."""
    first = next(iter(per_seed.values()))
    return [
        {f"seed {seed}": r.chosen_params[i] for seed, r in per_seed.items()} for i in range(len(first.fold_metrics))
    ]


def inner_fold_data(
    ctx: Context, config: ModelConfig, frame_set: str = VOICE_FRAME_SET, corpora: Sequence[str] = ()
) -> tuple[tuple, list[list[str]]]:
    """The clips of outer fold 0's training actors (none of outer fold 0's is read), with every clip of ``corpora``:
    ``((frames, labels, speakers, utterance vectors or None), inner actor folds)``."""
    _, clips, folds = _setup(ctx)
    inner = folds[1:]
    labels, actors = clips["emotion"].to_numpy(dtype=object), clips["actor"].to_numpy(dtype=object)
    training = np.isin(actors, [a for fold in inner for a in fold])
    clips = clips[training].reset_index(drop=True)
    utterance = _utterances(clips, ctx, config, "RAVDESS")
    own = (_frames(clips, ctx, "RAVDESS", frame_set), labels[training], actors[training], utterance)
    return _with_corpora(ctx, config, own, corpora, frame_set), inner


def inner_fold_protocol(inner: list[list[str]], tested: Sequence[int]) -> str:
    """The selection protocol's text for the inner folds ``inner`` and inner test folds ``tested``."""
    return (
        f"recipe selection on the training side of outer fold 0 only (actors "
        f"{', '.join(sorted(a for fold in inner for a in fold))} in {len(inner)} inner actor-grouped folds); inner "
        f"test folds {', '.join(map(str, tested))}; per fold and seed the validation actors (early stopping) are "
        "another inner fold, rotated by the seed; the actors of outer fold 0 are never used"
    )


def inner_fold_runs(
    ctx: Context,
    config: ModelConfig,
    name: str,
    frame_set: str = VOICE_FRAME_SET,
    normalise: str = "speaker",
    corpora: Sequence[str] = (),
) -> tuple[dict[int, CVResult], str, list[list[str]]]:
    """``config`` on ``frame_set`` frames, once per seed of ``ctx`` (at least 3; one in a smoke run), scored on the
    inner test folds :data:`SELECTION_INNER_FOLDS` of outer fold 0's training actors (every clip of ``corpora`` added
    to each training side; no outer fold 0 clip read): ``({seed: result}, protocol text, inner folds)``."""
    ctx = dataclasses.replace(ctx, seeds=neural_seeds(ctx))
    (sequences, clip_labels, speakers, vectors), inner = inner_fold_data(ctx, config, frame_set, corpora)
    tested = list(SELECTION_INNER_FOLDS[:1] if ctx.quick else SELECTION_INNER_FOLDS)
    per_seed = seeds_side_by_side(
        lambda seed: neural_cross_validation(
            *(quick_config(config, ctx), sequences, clip_labels, speakers, inner, seed, normalise, EMOTIONS),
            *(f"selection_{name}", tested, vectors, 1),
        ),
        ctx.seeds,
    )
    normalisation = "per-speaker" if normalise == "speaker" else "global"
    return per_seed, f"{inner_fold_protocol(inner, tested)}; {normalisation} normalisation", inner


def inner_fold_result(ctx: Context, config: ModelConfig, name: str, *args, **kwargs) -> tuple[CVResult, str, list]:
    """:func:`inner_fold_runs` (same arguments) with the seeds pooled: ``(result, protocol text, inner folds)``."""
    per_seed, protocol, inner = inner_fold_runs(ctx, config, name, *args, **kwargs)
    return over_seeds(lambda seed: per_seed[seed], list(per_seed)), protocol, inner


def run_selection(ctx: Context, names: Sequence[str] | None = None) -> list[dict]:
    """Score the :data:`CANDIDATES` recipes ``names`` (default all) on the inner folds of outer fold 0's training
    actors (3 seeds, per-speaker normalisation)."""
    ctx, rows = dataclasses.replace(ctx, seeds=neural_seeds(ctx)), []
    for name in names or CANDIDATES:
        config, added = CANDIDATES[name], EXTRA_TRAINING_CORPORA.get(name, ())
        result, protocol, inner = inner_fold_result(ctx, config, name, corpora=added)
        description = f"recipe candidate {name!r} on {_inputs(config)} (inner folds of outer fold 0)" + (
            f", every {' and '.join(added)} clip added to each training side" if added else ""
        )
        extra = {
            "role": "selection",
            "candidate": name,
            "config": dataclasses.asdict(config),
            "extra_training_corpora": list(added),
        }
        record_name = f"{SELECTION_GROUP}/{name}"
        rows.append(
            record_result(ctx, record_name, SELECTION_GROUP, "ravdess", protocol, inner, result, description, extra)
        )
    return rows


def _record(ctx: Context, name: str, protocol: str, folds, result: CVResult, description: str, extra: dict) -> dict:
    return record_result(ctx, f"{GROUP}/{name}", GROUP, "ravdess", protocol, folds, result, description, extra)


def _protocol(ctx: Context, folds: list[list[str]], config: ModelConfig, minutes: float, load: str) -> str:
    """The protocol text of the record run's cross-validation rows (``load``: the machine's load averages)."""
    functionals = " and of the functionals across each speaker's clips" if config.utterance_features else ""
    return (
        f"actor-grouped {len(folds)}-fold CV over RAVDESS actors 01-18, {len(ctx.seeds)} seeds; per fold and seed "
        f"the validation actors (early stopping) are another fold of the training side, rotated by the seed"
        f"{_refit_text(config)}; per-speaker normalisation of the frame features{functionals}; "
        "the recipe was chosen by ravdess_voice_neural_"
        f"selection on inner folds of outer fold 0's training actors only; the {len(folds)}-fold x {len(ctx.seeds)}-"
        f"seed neural run took {minutes:.1f} min on this machine ({os.cpu_count()} cores, folds trained side by side "
        f"in {default_workers()} processes of one TensorFlow thread each; {load})"
    )


def record_cross_validation(ctx: Context, clips: pd.DataFrame, folds: list[list[str]], config: ModelConfig) -> list:
    """The recipe over the outer folds x seeds: single seeds, the seed ensemble, its fusion with the baselines."""
    frames = _frames(clips, ctx, "RAVDESS")
    utterance = _utterances(clips, ctx, config, "RAVDESS")
    labels, actors = clips["emotion"].to_numpy(dtype=object), clips["actor"].to_numpy(dtype=object)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    per_seed = {
        seed: neural_cross_validation(
            *(config, frames, labels, actors, folds, seed, "speaker", EMOTIONS, "voice_recipe"),
            utterance=utterance,
            workers=default_workers(),
        )
        for seed in ctx.seeds
    }
    minutes = (time.perf_counter() - started) / 60
    load = f"1-minute load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    protocol = _protocol(ctx, folds, config, minutes, load)
    extra = {"config": dataclasses.asdict(config), "feature_set": VOICE_FRAME_SET, "minutes": round(minutes, 1)}
    rows = [
        _record(
            ctx,
            "recipe_single_seed/speaker",
            protocol,
            folds,
            over_seeds(lambda s: per_seed[s], ctx.seeds),
            f"voice recipe on {_inputs(config)}, each seed a model (fold x seed mean)",
            {"role": "variant", **extra},
        )
    ]
    ensemble = seed_ensemble(per_seed, "voice_recipe_seed_ensemble")
    rows.append(
        _record(
            ctx,
            "recipe/speaker",
            protocol,
            folds,
            ensemble,
            f"voice recipe on {_inputs(config)}, seed ensemble (mean probabilities of "
            f"{len(ctx.seeds)} seeds counted as one neural model)",
            {"role": "system", **extra},
        )
    )
    classical = classical_baselines(ctx, clips, folds)
    fused = late_fusion_of([ensemble, *classical], "late_fusion_recipe_egemaps_compare")
    rows.append(
        _record(
            ctx,
            "late_fusion_recipe_egemaps_compare/speaker",
            protocol,
            folds,
            fused,
            "late fusion (mean probabilities, equal weights, nothing fitted) of the voice recipe's seed "
            "ensemble, eGeMAPS functionals + RBF SVM and ComParE functionals + ridge",
            {"role": "system"},
        )
    )
    return rows


def per_speaker_result(per_seed: dict[int, CVResult], speakers: np.ndarray, name: str) -> CVResult:
    """The seed ensemble of a cross-corpus run, scored per test speaker (one 'fold' per speaker)."""
    ensemble = seed_ensemble(per_seed, name)
    speaker_ids = sorted(set(speakers))
    fold_of = np.array([speaker_ids.index(s) for s in speakers])
    metrics = [
        classification_metrics(ensemble.y_true[fold_of == i], ensemble.y_pred[fold_of == i], ensemble.labels)
        for i in range(len(speaker_ids))
    ]
    return dataclasses.replace(ensemble, fold_of=fold_of, fold_metrics=metrics)


def record_savee(ctx: Context, clips: pd.DataFrame, folds: list[list[str]], config: ModelConfig) -> dict:
    """Train on RAVDESS actors (one actor fold validates, rotated by the seed), test on the four SAVEE speakers."""
    savee = _corpus_clips(ctx, "savee")
    frames = _frames(clips, ctx, "RAVDESS") + _frames(savee, ctx, "SAVEE")
    utterance = _utterances(clips, ctx, config, "RAVDESS")
    if utterance is not None:
        utterance = np.vstack([utterance, _utterances(savee, ctx, config, "SAVEE")])
    labels = np.concatenate([clips["emotion"].to_numpy(dtype=object), savee["emotion"].to_numpy(dtype=object)])
    speakers = np.concatenate([("ravdess:" + clips["actor"]).to_numpy(), ("savee:" + savee["actor"]).to_numpy()])
    test_speakers = sorted(set(speakers[len(clips) :]))
    all_folds = [[f"ravdess:{a}" for a in fold] for fold in folds] + [test_speakers]
    per_seed = seeds_side_by_side(
        lambda seed: neural_cross_validation(
            *(config, frames, labels, speakers, all_folds, seed, "speaker", EMOTIONS, "voice_recipe_savee"),
            *([len(all_folds) - 1], utterance, 1),
        ),
        ctx.seeds,
    )
    result = per_speaker_result(per_seed, speakers[len(clips) :], "voice_recipe_savee")
    protocol = (
        "train on RAVDESS actors 01-18 except one validation fold of 3 actors (early stopping; rotated by the seed)"
        f"{_refit_text(config)}; test on the {len(test_speakers)} SAVEE speakers (out of corpus), "
        "per-speaker normalisation without labels; "
        f"seed ensemble of {len(ctx.seeds)} seeds; metrics per SAVEE speaker"
    )
    description = f"voice recipe on {_inputs(config)}, RAVDESS -> SAVEE, seed ensemble"
    extra = {"role": "system", "config": dataclasses.asdict(config), "feature_set": VOICE_FRAME_SET}
    return record_result(
        ctx, f"{GROUP}/savee/speaker", GROUP, "ravdess->savee", protocol, [test_speakers], result, description, extra
    )


def run_ravdess_voice_neural(ctx: Context) -> list[dict]:
    """:data:`VOICE_RECIPE` over the 6 RAVDESS folds x 3 seeds, its fusion with the baselines, RAVDESS -> SAVEE."""
    ctx, clips, folds = _setup(ctx)
    config = quick_config(VOICE_RECIPE, ctx)
    rows = record_cross_validation(ctx, clips, folds, config)
    rows.append(record_savee(ctx, clips, folds, config))
    return rows
