"""Classical voice baselines on RAVDESS, actor-grouped folds."""

from __future__ import annotations

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.evaluation.baselines import BASELINES, grouped_cross_validation, late_fusion_of, speaker_normalise
from emotion_lib.experiments.common import (
    NORMALISATIONS,
    Context,
    actor_folds,
    audio_functionals,
    over_seeds,
    record_result,
)
from emotion_lib.labels import EMOTIONS


def run_ravdess_voice(ctx: Context) -> list[dict]:
    """Baselines and the late fusion of both feature sets on RAVDESS actors 01-18, 6 folds of 3 actors."""
    clips = ravdess_speech_clips(ctx.data_dir, subset=8 if ctx.quick else 0)
    folds = actor_folds("ravdess", clips["actor"].unique())
    egemaps, kept = audio_functionals(clips, "eGeMAPSv02", ctx.cache_dir)
    compare, kept_c = audio_functionals(clips, "ComParE_2016", ctx.cache_dir)
    if list(kept["clip_id"]) != list(kept_c["clip_id"]):
        raise RuntimeError("eGeMAPS and ComParE functionals do not cover the same clips")
    labels, actors = kept["emotion"].to_numpy(), kept["actor"].to_numpy()
    protocol = (
        f"actor-grouped {len(folds)}-fold CV over RAVDESS actors {min(actors)}-{max(actors)}, inner "
        f"{ctx.inner_folds}-fold actor-grouped model selection"
    )
    out, members = [], {}
    for norm in NORMALISATIONS:
        blocks = {"eGeMAPSv02": egemaps, "ComParE_2016": compare}
        if norm == "speaker":
            blocks = {key: speaker_normalise(value, actors) for key, value in blocks.items()}
        for baseline, (feature_set, factory) in BASELINES.items():
            if baseline == "majority" and norm == "speaker":
                continue
            result = over_seeds(
                lambda seed: grouped_cross_validation(
                    factory(seed), blocks[feature_set], labels, actors, folds, ctx.inner_folds, EMOTIONS
                ),
                ctx.seeds,
            )
            members[baseline] = result
            name = f"ravdess_voice/{baseline}" + ("" if baseline == "majority" else f"/{norm}")
            out.append(
                record_result(
                    ctx,
                    name,
                    "ravdess_voice",
                    "ravdess",
                    protocol,
                    folds,
                    result,
                    f"{feature_set} functionals, {factory(0).name}, {norm} normalisation",
                    {"role": "baseline", "normalisation": norm, "feature_set": feature_set},
                )
            )
        fused = late_fusion_of([members["egemaps_svm"], members["compare_linear"]])
        out.append(
            record_result(
                ctx,
                f"ravdess_voice/late_fusion_egemaps_compare/{norm}",
                "ravdess_voice",
                "ravdess",
                protocol,
                folds,
                fused,
                f"late fusion (mean probabilities) of eGeMAPS + RBF SVM and ComParE + ridge, {norm} normalisation",
                {"role": "system", "normalisation": norm},
            )
        )
    return out
