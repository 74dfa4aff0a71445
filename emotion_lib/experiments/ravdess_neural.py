"""The neural model on RAVDESS voices in actor-grouped cross-validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.evaluation.baselines import (
    BASELINES,
    CVResult,
    grouped_cross_validation,
    late_fusion_of,
    speaker_normalise,
)
from emotion_lib.evaluation.neural_cv import neural_cross_validation
from emotion_lib.experiments.ablations import ablation_variants, reference_variant
from emotion_lib.experiments.common import (
    Context,
    actor_folds,
    audio_features,
    audio_functionals,
    neural_seeds,
    over_seeds,
    record_result,
)
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig

FRAME_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
"""Frame-level openSMILE sets: eGeMAPSv02 LLDs (25) and ComParE_2016 LLDs + deltas (130), 100 frames/s."""

RAVDESS_NEURAL_BASE = ModelConfig(modalities=("audio",), conv_strides=4, epochs=30, patience=6)
"""The main system's model, fixed before any RAVDESS run: the default ``ModelConfig`` (Conv1D -> BiLSTM ->
attention, focal loss, augmentation) audio-only, with a Conv1D stride of 4 (25 steps/s) to fit the time budget."""

AUDIO_ABLATIONS = ("pooling", "loss", "augmentation", "encoder", "modalities", "cross_modal")
"""The ablations of :data:`emotion_lib.experiments.ABLATIONS`; those needing video are returned as not applicable."""


def _restrict(result: CVResult, folds: Sequence[int]) -> CVResult:
    """The part of a CV result on the test ``folds`` only (the same clips an ablation run on those folds scores)."""
    rows = np.isin(result.fold_of, list(folds))
    kept = [i for i, fold in enumerate(np.unique(result.fold_of)) if fold in set(folds)]
    return dataclasses.replace(
        result,
        y_true=result.y_true[rows],
        y_pred=result.y_pred[rows],
        proba=result.proba[rows],
        fold_of=result.fold_of[rows],
        fold_metrics=[result.fold_metrics[i] for i in kept],
        chosen_params=[result.chosen_params[i] for i in kept],
    )


GROUP = "ravdess_neural"


@dataclass
class NeuralRun:
    """One ``ravdess_neural`` run: the clips, folds and base model its rows share, and the rows recorded so far."""

    ctx: Context
    base: ModelConfig
    clips: pd.DataFrame
    folds: list[list[str]]
    protocol: str
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = self.clips["emotion"].to_numpy(dtype=object)
        self.actors = self.clips["actor"].to_numpy(dtype=object)

    def cross_validate(
        self, config: ModelConfig, key: str, name: str, fold_indices: Sequence[int] | None = None
    ) -> dict[int, CVResult]:
        """Neural CV of ``config`` on the :data:`FRAME_SETS` ``key`` frame features, once per seed."""
        audio, kept = audio_features(self.clips, FRAME_SETS[key], "lld", self.ctx.cache_dir)
        if list(kept["clip_id"]) != list(self.clips["clip_id"]):
            raise RuntimeError(f"{FRAME_SETS[key]} frame features are missing for some RAVDESS clips")
        return {
            seed: neural_cross_validation(
                config, audio, self.labels, self.actors, self.folds, seed, "speaker", EMOTIONS, name, fold_indices
            )
            for seed in self.ctx.seeds
        }

    def record(
        self, name: str, per_seed: dict[int, CVResult], description: str, extra: dict, protocol: str | None = None
    ) -> None:
        """Record ``per_seed`` results as ``ravdess_neural/<name>`` (``extra['config']`` defaults to the base)."""
        result = over_seeds(lambda seed: dataclasses.replace(per_seed[seed]), self.ctx.seeds)
        self.rows.append(
            record_result(
                self.ctx,
                f"{GROUP}/{name}",
                GROUP,
                "ravdess",
                protocol or self.protocol,
                self.folds,
                result,
                description,
                {"config": dataclasses.asdict(extra.pop("config", self.base)), **extra},
            )
        )


def neural_run(ctx: Context) -> NeuralRun:
    """The run's clips (4 per actor with ``ctx.quick``), actor folds, base model and :func:`neural_seeds`."""
    ctx = dataclasses.replace(ctx, seeds=neural_seeds(ctx))
    base = RAVDESS_NEURAL_BASE.replace(epochs=2, rnn_units=16, conv_filters=16) if ctx.quick else RAVDESS_NEURAL_BASE
    clips = ravdess_speech_clips(ctx.data_dir, subset=4 if ctx.quick else 0)
    folds = actor_folds("ravdess", sorted(set(clips["actor"])), n_folds=3 if ctx.quick else None)
    protocol = (
        f"actor-grouped {len(folds)}-fold CV over RAVDESS actors 01-18; per fold and seed the validation "
        "actors (early stopping) are another fold of the training side, rotated by the seed; "
        "per-speaker normalisation of the frame features"
    )
    return NeuralRun(ctx, base, clips, folds, protocol)


def record_main_system(run: NeuralRun) -> dict[int, CVResult]:
    """Record the main system (eGeMAPS frames) and its late fusion with the classical baselines; return the
    main system's per-seed results."""
    main = run.cross_validate(run.base, "egemaps", "neural_egemaps")
    run.record(
        "egemaps/speaker",
        main,
        "Conv1D-BiLSTM-attention (focal loss, augmentation) on eGeMAPSv02 frame "
        "features (25 LLDs), speaker normalisation",
        {"role": "system", "feature_set": "eGeMAPSv02"},
    )
    classical = classical_baselines(run.ctx, run.clips, run.folds)
    name = "late_fusion_neural_egemaps_compare"
    fused = {seed: late_fusion_of([main[seed], *classical], name) for seed in run.ctx.seeds}
    run.record(
        f"{name}/speaker",
        fused,
        "late fusion (mean probabilities, equal weights) of the eGeMAPS-frame neural model, eGeMAPS functionals + "
        "RBF SVM and ComParE functionals + ridge, speaker normalisation",
        {"role": "system"},
    )
    return main


def record_ablations(run: NeuralRun, main: dict[int, CVResult], ablations: Sequence[str], n_folds: int) -> None:
    """Record the audio-applicable ablation variants on the first ``n_folds`` test folds (the base variant reuses
    the main system's results on those folds); variants needing video are listed as not applicable."""
    tested = list(range(n_folds))
    protocol = run.protocol + f"; ablations: test folds {', '.join(map(str, tested))} of {len(run.folds)} only"
    for ablation, variant, config, reason in ablation_variants(run.base, ablations, has_video=False):
        name = f"{ablation}/{variant}"
        if config is None:
            note = f"not applicable: {reason}"
            run.rows.append({"name": f"{GROUP}/{name}", "ua": None, "ua_std": None, "note": note})
            continue
        per_seed = (
            {seed: _restrict(main[seed], tested) for seed in run.ctx.seeds}
            if config == run.base
            else run.cross_validate(config, "egemaps", f"{ablation}_{variant}", tested)
        )
        extra = {"role": "ablation", "ablation": ablation, "variant": variant, "config": config}
        if reference := reference_variant(run.base, ablation):
            extra["reference"] = f"{GROUP}/{ablation}/{reference}"  # compared with it in the results table
        run.record(name, per_seed, f"{ablation}: {variant} (eGeMAPS frames, audio only)", extra, protocol)


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
    run = neural_run(ctx)
    main = record_main_system(run)
    if run.ctx.quick:
        record_ablations(run, main, ("pooling", "cross_modal"), 1)
    else:
        record_ablations(run, main, AUDIO_ABLATIONS, ablation_folds)
        run.record(
            "compare/speaker",
            run.cross_validate(run.base, "compare", "neural_compare"),
            "Conv1D-BiLSTM-attention (focal loss, augmentation) on ComParE_2016 frame features (65 LLDs + "
            "deltas), speaker normalisation",
            {"role": "variant", "feature_set": "ComParE_2016"},
        )
    return run.rows


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
        results.append(
            grouped_cross_validation(
                factory(ctx.seeds[0]),
                speaker_normalise(values, actors),
                labels,
                actors,
                folds,
                ctx.inner_folds,
                EMOTIONS,
            )
        )
    return results
