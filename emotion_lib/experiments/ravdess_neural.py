"""The neural model on RAVDESS voices in actor-grouped cross-validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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
from emotion_lib.experiments.ablations import ablation_variants
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
    clips = ravdess_speech_clips(ctx.data_dir, subset=4 if ctx.quick else 0)
    labels, actors = clips["emotion"].to_numpy(dtype=object), clips["actor"].to_numpy(dtype=object)
    folds = actor_folds("ravdess", sorted(set(actors)), n_folds=3 if ctx.quick else None)
    group, out = "ravdess_neural", []
    protocol = (
        f"actor-grouped {len(folds)}-fold CV over RAVDESS actors 01-18; per fold and seed the validation "
        "actors (early stopping) are another fold of the training side, rotated by the seed; "
        "per-speaker normalisation of the frame features"
    )

    def cross_validate(config: ModelConfig, key: str, name: str, fold_indices=None) -> dict[int, CVResult]:
        audio, kept = audio_features(clips, FRAME_SETS[key], "lld", ctx.cache_dir)
        if list(kept["clip_id"]) != list(clips["clip_id"]):
            raise RuntimeError(f"{FRAME_SETS[key]} frame features are missing for some RAVDESS clips")
        return {
            seed: neural_cross_validation(
                config, audio, labels, actors, folds, seed, "speaker", EMOTIONS, name, fold_indices
            )
            for seed in seeds
        }

    def record(
        name: str, per_seed: dict[int, CVResult], description: str, extra: dict, protocol_text: str = protocol
    ) -> None:
        result = over_seeds(lambda seed: dataclasses.replace(per_seed[seed]), seeds)
        out.append(
            record_result(
                ctx,
                f"{group}/{name}",
                group,
                "ravdess",
                protocol_text,
                folds,
                result,
                description,
                {"config": dataclasses.asdict(extra.pop("config", base)), **extra},
            )
        )

    main = cross_validate(base, "egemaps", "neural_egemaps")
    record(
        "egemaps/speaker",
        main,
        "Conv1D-BiLSTM-attention (focal loss, augmentation) on eGeMAPSv02 frame "
        "features (25 LLDs), speaker normalisation",
        {"role": "system", "feature_set": "eGeMAPSv02"},
    )

    classical = classical_baselines(ctx, clips, folds)
    fused = {seed: late_fusion_of([main[seed], *classical], "late_fusion_neural_egemaps_compare") for seed in seeds}
    record(
        "late_fusion_neural_egemaps_compare/speaker",
        fused,
        "late fusion (mean probabilities, equal weights) of the eGeMAPS-frame neural model, eGeMAPS functionals + "
        "RBF SVM and ComParE functionals + ridge, speaker normalisation",
        {"role": "system"},
    )

    tested = list(range(ablation_folds))
    ablation_protocol = protocol + f"; ablations: test folds {', '.join(map(str, tested))} of {len(folds)} only"
    ablations = ("pooling", "cross_modal") if ctx.quick else AUDIO_ABLATIONS
    for ablation, variant, config, reason in ablation_variants(base, ablations, has_video=False):
        if config is None:
            out.append(
                {
                    "name": f"{group}/{ablation}/{variant}",
                    "ua": None,
                    "ua_std": None,
                    "note": f"not applicable: {reason}",
                }
            )
            continue
        per_seed = (
            {seed: _restrict(main[seed], tested) for seed in seeds}
            if config == base
            else cross_validate(config, "egemaps", f"{ablation}_{variant}", tested)
        )
        record(
            f"{ablation}/{variant}",
            per_seed,
            f"{ablation}: {variant} (eGeMAPS frames, audio only)",
            {"role": "ablation", "ablation": ablation, "variant": variant, "config": config},
            ablation_protocol,
        )

    if not ctx.quick:
        record(
            "compare/speaker",
            cross_validate(base, "compare", "neural_compare"),
            "Conv1D-BiLSTM-attention (focal loss, augmentation) on ComParE_2016 frame features (65 LLDs + "
            "deltas), speaker normalisation",
            {"role": "variant", "feature_set": "ComParE_2016"},
        )
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
