"""What utterance statistics of the frame features carry: ``ravdess_voice_statistics``.

A diagnostic for the voice model study, on the training side of outer fold 0 only (the actors of RAVDESS actor
folds 1-5 in 5 inner actor-grouped folds; the actors of outer fold 0 are never used). A ridge classifier (the
``compare_linear`` baseline's model, alpha chosen by inner folds) is fitted on per-clip statistics of the
per-speaker-normalised ComParE_2016 frames, the statistics the neural model's ``input_statistics`` option computes,
with and without a second, utterance-level per-speaker normalisation of the statistics, and on the 6373 ComParE
functionals (the baseline's features) for reference, and on those functionals reduced inside each fit by a reducer
fitted on its training rows (:data:`FUNCTIONAL_REDUCTIONS`: how far the 6373 columns can shrink before the ridge
loses UA, for the neural recipe's ``utterance_reducer``).

Run with ``python -m emotion_lib evaluate --only ravdess_voice_statistics``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.evaluation.baselines import grouped_cross_validation, ridge, speaker_normalise
from emotion_lib.experiments.common import Context, actor_folds, audio_features, audio_functionals, record_result
from emotion_lib.features.normalise import Normaliser
from emotion_lib.labels import EMOTIONS

GROUP = "ravdess_voice_statistics"


def _percentile_statistics(frames: np.ndarray) -> list[np.ndarray]:
    """Mean, standard deviation, percentiles 1/25/50/75/99, interquartile range and linear slope per column."""
    time = np.linspace(-1.0, 1.0, len(frames))[:, None]
    slope = (time * (frames - frames.mean(0))).sum(0) / max(float((time**2).sum()), 1e-6)
    q = np.percentile(frames, [1, 25, 50, 75, 99], axis=0)
    return [frames.mean(0), frames.std(0), *q, q[3] - q[1], slope]


STATISTIC_SETS: dict[str, Callable[[np.ndarray], list[np.ndarray]]] = {
    "mean_std": lambda f: [f.mean(0), f.std(0)],
    "mean_std_max_min": lambda f: [f.mean(0), f.std(0), f.max(0), f.min(0)],
    "percentiles_slope": _percentile_statistics,
}
"""Per-clip statistics of the frames: the first two are what ``MaskedStatisticsPooling`` computes."""

FUNCTIONAL_REDUCTIONS: tuple[tuple[str, int], ...] = (
    *(("pca", n) for n in (64, 128, 256)),
    *(("anova", n) for n in (250, 500, 1000, 2000)),
)
"""``(reducer, components)`` applied to the speaker-normalised ComParE functionals before the ridge."""


def run_voice_statistics(ctx: Context) -> list[dict]:
    """Ridge on frame statistics (with and without utterance-level speaker normalisation) and on ComParE
    functionals (all of them and reduced), inner folds of outer fold 0's training actors."""
    clips = ravdess_speech_clips(ctx.data_dir, subset=4 if ctx.quick else 0)
    folds = actor_folds("ravdess", sorted(set(clips["actor"])), n_folds=4 if ctx.quick else None)
    inner = folds[1:]
    actors, labels = clips["actor"].to_numpy().astype(str), clips["emotion"].to_numpy().astype(str)
    keep = np.isin(actors, [a for fold in inner for a in fold])
    frames, _ = audio_features(clips, "ComParE_2016", "lld", ctx.cache_dir)
    normaliser = Normaliser("speaker").fit(frames, list(actors))
    normed = [normaliser.transform(f, a) for f, a in zip(frames, actors)]
    blocks = {}
    for name, statistics in STATISTIC_SETS.items():
        values = np.array([np.concatenate(statistics(f)) for f in normed])
        blocks[f"frame_{name}"] = (values, f"{name} of per-speaker-normalised ComParE frames")
        blocks[f"frame_{name}/utterance_speaker_normalised"] = (
            speaker_normalise(values, actors),
            f"{name} of per-speaker-normalised ComParE frames, then per-speaker normalised across clips",
        )
    functionals, _ = audio_functionals(clips, "ComParE_2016", ctx.cache_dir)
    blocks["compare_functionals"] = (speaker_normalise(functionals, actors), "ComParE_2016 functionals (6373)")
    models = {name: ridge(ctx.seeds[0]) for name in blocks}
    for reducer, components in FUNCTIONAL_REDUCTIONS:
        components = min(components, 8) if ctx.quick else components
        name = f"compare_functionals/{reducer}{components}"
        blocks[name] = (
            blocks["compare_functionals"][0],
            f"ComParE_2016 functionals, {reducer} to {components} columns",
        )
        models[name] = ridge(ctx.seeds[0], reducer=reducer, components=components)
    protocol = (
        f"diagnostic on the training side of outer fold 0 only: actors of RAVDESS folds 1-{len(folds) - 1} in "
        f"{len(inner)} inner actor-grouped folds, ridge with alpha chosen by {ctx.inner_folds} folds inside; "
        "outer fold 0 is never used"
    )
    rows = []
    for name, (values, description) in blocks.items():
        result = grouped_cross_validation(
            models[name], values[keep], labels[keep], actors[keep], inner, ctx.inner_folds, EMOTIONS
        )
        extra = {"role": "diagnostic", "dimensions": int(values.shape[1]), "model": models[name].name}
        rows.append(
            record_result(ctx, f"{GROUP}/{name}", GROUP, "ravdess", protocol, inner, result, description, extra)
        )
    return rows
