"""The real-data experiments of notebook 05 and ``make evaluate``, each recorded in ``reports/metrics.json``.

- ``ravdess_voice``: RAVDESS speech, 6 classes, actor-grouped CV over actors 01-18 (the 6 folds of 3 actors
  of ``emotion_lib/data/split_csvs/ravdess_folds_v1.csv``): majority class, eGeMAPSv02 + RBF SVM, ComParE_2016 + a ridge
  linear classifier, with global and per-speaker normalisation, and a late fusion of both;
- ``ravdess_to_savee``: trained on all 18 RAVDESS actors, tested on the 4 SAVEE speakers (out of corpus);
- ``ckplus``: CK+ 48x48 crops, 5 classes, subject-disjoint 5-fold CV: pixels + PCA + LR, HOG + LBP, the dlib
  identity embedding, fer's FER2013 network zero-shot and its penultimate features, mirrored-image augmentation;
- ``ravdess_fusion``: clip-level OpenFace action units + eGeMAPS functionals, early and late fusion.

Every hyperparameter is chosen by inner speaker-grouped folds on the training speakers of each outer fold
(:func:`emotion_lib.evaluation.baselines.fit_with_inner_cv`). Features are cached under ``data/cache/``.
Run everything with ``python -m emotion_lib evaluate`` (``--quick`` for a small smoke run).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.splits import folds_for
from emotion_lib.evaluation.baselines import CVResult
from emotion_lib.evaluation.records import METRICS_PATH, ExperimentRecord, record_experiment
from emotion_lib.features.store import ExtractionConfig, extract_features, load_features
from emotion_lib.paths import CACHE_DIR, shared_data_dir

LOG = logging.getLogger(__name__)


NORMALISATIONS = ("global", "speaker")
EVALUATE_COMMAND = "python -m emotion_lib evaluate"
"""The command line of the experiments (see :mod:`emotion_lib.cli`)."""


@dataclass
class Context:
    """Where the data are, where results go, how much to run."""

    data_dir: Path = field(default_factory=shared_data_dir)
    cache_dir: Path = CACHE_DIR
    metrics_path: Path = METRICS_PATH
    seeds: tuple[int, ...] = (0,)
    quick: bool = False
    command: str = EVALUATE_COMMAND
    """The ``evaluate`` command line that runs the experiments, with its options but without ``--only``."""
    inner_folds: int = 3
    facenet_weights: Path | None = None
    """facenet-pytorch weights (a .pt file or ``vggface2``) for CK+; none: the packaged CASIA-WebFace FaceNet."""

    def command_for(self, group: str) -> str:
        """The command that reproduces the experiment ``group`` alone (recorded with its results)."""
        return f"{self.command} --only {group}"


def actor_folds(corpus: str, actors: Sequence[str], n_folds: int | None = None, seed: int = 0) -> list[list[str]]:
    """The actor folds of ``corpus`` restricted to ``actors`` (see :func:`emotion_lib.data.splits.folds_for`)."""
    folds = folds_for(corpus, list(actors), n_folds=n_folds, seed=seed)
    return [sorted(group["actor"]) for _, group in folds.groupby("fold") if len(group)]


def cached_features(
    clips: pd.DataFrame, config: ExtractionConfig, cache_dir: Path | str = CACHE_DIR
) -> tuple[dict, pd.DataFrame]:
    """Extract the clips' features once into the shared per-clip cache and load them.

    Returns ``({clip_id: ClipFeatures}, clips)`` where clips that failed extraction are left out (and reported).
    """
    report = extract_features(clips, config, cache_dir=cache_dir, workers=1, progress=False)
    if report.failed:
        LOG.warning("%s", report)
    cached = load_features(clips, config, cache_dir=cache_dir, missing="skip")
    return cached, clips[clips["clip_id"].isin(cached)].reset_index(drop=True)


def audio_features(
    clips: pd.DataFrame, feature_set: str, level: str = "lld", cache_dir: Path | str = CACHE_DIR
) -> tuple[list[np.ndarray], pd.DataFrame]:
    """openSMILE features of every clip at ``level`` (``'lld'``: ``(T_i, D)`` frames; ``'functionals'``:
    ``(1, D)``) through :func:`cached_features`: ``(arrays, clips)`` without the clips that failed."""
    config = ExtractionConfig(audio_feature_set=feature_set, audio_level=level, video_backend=None)
    cached, kept = cached_features(clips, config, cache_dir)
    return [cached[clip_id].audio for clip_id in kept["clip_id"]], kept


def audio_functionals(
    clips: pd.DataFrame, feature_set: str, cache_dir: Path | str = CACHE_DIR
) -> tuple[np.ndarray, pd.DataFrame]:
    """:func:`audio_features` functionals as one row per clip: ``(features (n, D), clips)``."""
    rows, kept = audio_features(clips, feature_set, "functionals", cache_dir)
    return np.vstack([row.reshape(-1) for row in rows]), kept


def record_result(
    ctx: Context,
    name: str,
    group: str,
    corpus: str,
    protocol: str,
    folds,
    result: CVResult,
    description: str,
    extra: dict | None = None,
) -> dict:
    """Write one experiment (fold x seed summary, pooled out-of-fold metrics) to the metrics file."""
    record = ExperimentRecord(
        name=name,
        corpus=corpus,
        protocol=protocol,
        folds=folds,
        seeds=list(ctx.seeds),
        metrics=result.summary,
        command=ctx.command_for(group),
        description=("SMOKE RUN, a few clips per actor: " if ctx.quick else "") + description,
        group=group,
        pooled=result.pooled,
        extra={"chosen_params": result.chosen_params, **(extra or {})},
    )
    record_experiment(record, ctx.metrics_path)
    ua = record.metrics["ua"]
    LOG.info("%-48s UA %.3f +- %.3f", name, ua["mean"], ua["std"])
    return {"name": name, "ua": ua["mean"], "ua_std": ua["std"]}


def over_seeds(run: Callable[[int], CVResult], seeds: Sequence[int]) -> CVResult:
    """Run a seeded CV once per seed: the first seed's pooled predictions, with fold metrics and chosen
    parameters of every fold x seed (a new result; the per-seed results are left as they were)."""
    results = [run(seed) for seed in seeds]
    return dataclasses.replace(
        results[0],
        fold_metrics=[m for r in results for m in r.fold_metrics],
        chosen_params=[p for r in results for p in r.chosen_params],
    )


def neural_seeds(ctx: Context) -> tuple[int, ...]:
    """Seeds of the neural experiments: at least three (one trained model's result swings by several points),
    starting from the context's first seed; one in a smoke run."""
    if ctx.quick:
        return ctx.seeds[:1]
    return ctx.seeds if len(ctx.seeds) >= 3 else tuple(range(ctx.seeds[0], ctx.seeds[0] + 3))
