"""End-to-end check of the audio-visual model on the real face videos: a small check, not a benchmark.

Only 50 real audio-visual clips exist here (44 RAVDESS actor-01 face videos, 6 CREMA-D actor-1001 FLVs), too
few to train the fusion model speaker-independently. It is trained on *unpaired* real data instead:

- voices: RAVDESS speech actors 02-18 (eGeMAPSv02 LLDs, 6 classes, audio only);
- faces: CK+ 48x48 crops, upscaled so the detector finds the face
  (:func:`~emotion_lib.features.images.ckplus_features`), fer backend 128-d penultimate features per frame
  (5 classes, no neutral, video only), plus mirrored copies.

Training examples are faces alone (audio fully masked) and class-matched pseudo-pairs: each voice with a face
sequence of the same emotion from another corpus and person. Neutral voices have no CK+ face; they get a face of
any class, so a face carries no evidence for or against neutral. The model's modality dropout turns pairs into
voices alone (video missing). Early stopping watches held-out RAVDESS actors (the committed validation fold
among 02-18) and held-out CK+ subjects, built the same way plus voices alone. Normalisation is global, with
training statistics only.

The 50 clips then go through the path users take: :func:`~emotion_lib.features.store.extract_features` (eGeMAPS
LLDs and fer features at 5 frames/s from the files themselves), normalisation, padding and masks, and prediction
with both modalities, audio only (video masked) and video only (audio masked). Neither RAVDESS actor 01 nor
CREMA-D actor 1001 is in training and the faces come from another corpus: speaker-independent, and cross-corpus
for the faces. Run ``python -m emotion_lib evaluate --only end_to_end`` (``--quick``: a handful of clips, 1 epoch).
The training and test data are assembled in :mod:`emotion_lib.experiments.end_to_end_data`.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.evaluation.metrics import aggregate, classification_metrics, wilson_interval
from emotion_lib.evaluation.records import METRICS_PATH, ExperimentRecord, load_metrics, record_experiment
from emotion_lib.experiments.common import Context, neural_seeds
from emotion_lib.experiments.end_to_end_data import (
    INPUT_MODES,
    TrainingData,
    assert_unseen,
    av_clip_features,
    clip_inputs,
    training_data,
)
from emotion_lib.features.store import ClipFeatures
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig
from emotion_lib.plots.evaluation import plot_confusion_grid
from emotion_lib.plots.figures import save_figure
from emotion_lib.sequences.pairing import PartialSequenceData
from emotion_lib.training.trainer import TrainResult, predict_data, train

LOG = logging.getLogger(__name__)


GROUP = "end_to_end"
TEST_SETS = {"ravdess-faces": "ravdess_actor01", "crema-d": "crema_d_1001"}
"""Corpus of the audio-visual clips -> name of its test set in the metrics file."""


def train_model(ctx: Context, data: TrainingData, seed: int) -> TrainResult:
    """Train the audio-visual model from scratch on ``data`` (early stopping on its validation side)."""
    config = ModelConfig(
        modalities=("audio", "video"),
        audio_dim=data.train.audio_dim,
        video_dim=data.train.video_dim,
        epochs=1 if ctx.quick else 30,
        seed=seed,
    )
    with tempfile.TemporaryDirectory() as out_dir:
        return train(
            config,
            data.train,
            data.validation,
            Path(out_dir) / "checkpoint",
            resume=False,
            tensorboard_dir=Path(out_dir) / "tensorboard",
        )


def run_seed(
    ctx: Context, seed: int, clips: pd.DataFrame, features: dict[str, ClipFeatures], timings: dict[str, float]
) -> tuple[dict, dict[str, np.ndarray]]:
    """Assemble the training data, train one model with ``seed`` and predict the clips in every input mode.

    Returns the training summary and ``{mode: probabilities}``; the step durations are added to ``timings``.
    """
    step = time.perf_counter()
    data = training_data(ctx, seed)
    timings[f"training_data_seed{seed}_s"] = time.perf_counter() - step
    assert_unseen(data.sides, clips)
    step = time.perf_counter()
    result = train_model(ctx, data, seed)
    timings[f"training_seed{seed}_s"] = time.perf_counter() - step
    training = {
        "seed": seed,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "train_examples": len(data.train),
        "validation_examples": len(data.validation),
        "validation": validation_metrics(result.model, data.validation),
    }
    predictions = {
        mode: predict_data(
            result.model, clip_inputs(clips, features, data.audio_normaliser, data.video_normaliser, mode)
        )
        for mode in INPUT_MODES
    }
    return training, predictions


def run_end_to_end(ctx: Context) -> list[dict]:
    """Train on unpaired real voices and faces, predict the 50 real audio-visual clips three ways, record it.

    Returns one row per (test set, input mode) like the other experiments; the per-clip table (every mode's
    predictions) goes into the ``audio_video`` records' ``extra['clips']`` (see :func:`recorded_clips`), the
    confusion figure to ``05_end_to_end_confusion`` (``_smoke`` appended with ``ctx.quick``). Runs with
    :func:`neural_seeds` of the context.
    """
    ctx = dataclasses.replace(ctx, seeds=neural_seeds(ctx))
    started = time.perf_counter()
    features, clips = av_clip_features(ctx)
    timings = {"test_extraction_s": time.perf_counter() - started}
    predictions: dict[str, list[np.ndarray]] = {mode: [] for mode in INPUT_MODES}
    training: list[dict] = []
    for seed in ctx.seeds:
        summary, probabilities = run_seed(ctx, seed, clips, features, timings)
        training.append(summary)
        for mode, proba in probabilities.items():
            predictions[mode].append(proba)
    timings["total_s"] = time.perf_counter() - started
    LOG.info("end-to-end run: %s", {k: round(v, 1) for k, v in timings.items()})
    table = clip_table(clips, predictions)
    rows = record_end_to_end(ctx, clips, table, predictions, training, timings)
    smoke = "_smoke" if ctx.quick else ""  # a smoke run never replaces the real run's figure
    save_figure(confusion_figure(table, ctx.quick), f"05_end_to_end_confusion{smoke}")
    return rows


def validation_metrics(model, data: PartialSequenceData) -> dict[str, float]:
    """UA on the validation voices alone, faces alone and pairs (the kinds of example in ``data``)."""
    predicted = predict_data(model, data).argmax(axis=1)
    kinds = np.array([name.split(":", 1)[0] for name in data.names])
    names = np.asarray(EMOTIONS)
    return {
        f"{kind}_ua": classification_metrics(
            names[data.labels[kinds == kind]], names[predicted[kinds == kind]], EMOTIONS
        )["ua"]
        for kind in dict.fromkeys(kinds)
    }


def clip_table(clips: pd.DataFrame, predictions: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    """Per clip: true and perceived labels, face-found fraction, and per input mode the predicted class and its
    probability (mean over seeds)."""
    columns = ["clip_id", "corpus", "actor", "emotion", "video_frames", "face_fraction"] + [
        c for c in ("perceived_voice", "perceived_face", "perceived_audiovisual") if c in clips
    ]
    table = clips[columns].copy()
    for mode, runs in predictions.items():
        probabilities = np.mean(runs, axis=0)
        table[f"predicted_{mode}"] = np.asarray(EMOTIONS)[probabilities.argmax(axis=1)]
        table[f"confidence_{mode}"] = probabilities.max(axis=1).round(3)
    return table


def perceived_agreement(table: pd.DataFrame, mode: str) -> float | None:
    """Fraction of clips whose prediction equals CREMA-D's crowd vote on the audio-visual clip (ties left out)."""
    voted = table["perceived_audiovisual"].map(lambda vote: isinstance(vote, str)).to_numpy(dtype=bool)
    if not voted.any():
        return None
    votes = table["perceived_audiovisual"].to_numpy()[voted]
    return float(np.mean(table[f"predicted_{mode}"].to_numpy()[voted] == votes))


def _description(ctx: Context, corpus: str, n: int, mode: str) -> str:
    given = " + ".join(INPUT_MODES[mode]) + (" (the other modality masked)" if len(INPUT_MODES[mode]) == 1 else "")
    labels_note = (
        "labels: the intended emotion of the file name (CREMA-D's crowd-perceived labels from "
        "summaryTable.csv are in the clip table)"
        if corpus == "crema-d"
        else "labels: the acted emotion of the file name"
    )
    return (
        ("SMOKE RUN, a handful of clips, 1 epoch: " if ctx.quick else "")
        + f"END-TO-END CHECK on n={n} real clips of one actor ({TEST_SETS[corpus]}), not a "
        f"benchmark result: the full audio-visual model given {given}, trained on unpaired real "
        f"data (RAVDESS voices of actors 02-18, CK+ faces); {labels_note}"
    )


def _extra(corpus: str, mode: str, table: pd.DataFrame, pooled: dict, training: list, timings: dict) -> dict:
    """The record's extra fields; ``table``: the clip table of this test set only."""
    n = len(table)
    extra = {
        "n_clips": n,
        "input": list(INPUT_MODES[mode]),
        "wa_wilson_95": wilson_interval(int(round(pooled["wa"] * n)), n),
        "training": training,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    if mode == "audio_video":  # the clip table holds every mode's predictions: stored once
        extra["clips"] = table.dropna(axis=1, how="all").to_dict("records")
    else:
        extra["clips_in"] = f"{GROUP}/{TEST_SETS[corpus]}/audio_video"
    if corpus == "crema-d":
        extra["agreement_with_perceived_audiovisual"] = perceived_agreement(table, mode)
    return extra


def record_end_to_end(
    ctx: Context,
    clips: pd.DataFrame,
    table: pd.DataFrame,
    predictions: dict[str, list[np.ndarray]],
    training: list[dict],
    timings: dict[str, float],
) -> list[dict]:
    """One metrics record per test set and input mode (mean over seeds; pooled: the :func:`clip_table`
    predictions from seed-averaged probabilities)."""
    names = np.asarray(EMOTIONS)
    rows = []
    for corpus, test_set in TEST_SETS.items():
        chosen = (clips["corpus"] == corpus).to_numpy()
        if not chosen.any():
            continue
        truth = clips.loc[chosen, "emotion"].to_numpy()
        actors = sorted(clips.loc[chosen, "actor"].unique())
        n = int(chosen.sum())
        protocol = (
            "train on unpaired real data: voices of RAVDESS actors 02-18 and CK+ faces (class-matched "
            "pseudo-pairs, faces alone; early stopping on held-out RAVDESS actors and CK+ subjects); "
            f"test on {n} real audio-visual clips of actor {', '.join(actors)} (never in training), "
            "features extracted from the files"
        )
        for mode in INPUT_MODES:
            runs = [classification_metrics(truth, names[p[chosen].argmax(axis=1)], EMOTIONS) for p in predictions[mode]]
            pooled = classification_metrics(truth, table.loc[chosen, f"predicted_{mode}"].to_numpy(), EMOTIONS)
            record = ExperimentRecord(
                name=f"{GROUP}/{test_set}/{mode}",
                corpus=corpus,
                protocol=protocol,
                folds=[actors],
                seeds=list(ctx.seeds),
                metrics=aggregate(runs),
                command=ctx.command_for(GROUP),
                description=_description(ctx, corpus, n, mode),
                group=GROUP,
                pooled=pooled,
                extra=_extra(corpus, mode, table[chosen], pooled, training, timings),
            )
            record_experiment(record, ctx.metrics_path)
            LOG.info("%-40s n=%2d UA %.3f WA %.3f", record.name, n, pooled["ua"], pooled["wa"])
            rows.append({"name": record.name, "n": n, "ua": pooled["ua"], "wa": pooled["wa"]})
    return rows


def recorded_clips(metrics_path: Path | str = METRICS_PATH) -> pd.DataFrame:
    """The per-clip table of the recorded end-to-end check (both test sets; empty when not recorded)."""
    experiments = load_metrics(metrics_path)["experiments"]
    tables = [
        pd.DataFrame(experiments[name]["extra"]["clips"])
        for name in (f"{GROUP}/{test_set}/audio_video" for test_set in TEST_SETS.values())
        if name in experiments
    ]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def confusion_figure(table: pd.DataFrame, smoke: bool = False):
    """Confusion counts per test set (rows) and input mode (columns) from a :func:`clip_table`."""
    title = ("SMOKE RUN - " if smoke else "") + "End-to-end check on real clips (tiny n, not a benchmark)"
    return plot_confusion_grid(table, TEST_SETS, list(INPUT_MODES), title)
