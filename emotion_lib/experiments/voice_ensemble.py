"""How many seeds the voice recipe's seed ensemble averages, chosen on the inner fold (never on the test folds).

The record run (``ravdess_voice_neural``) counts the mean probabilities of its seeds' models as one neural model. It
ran with 3 seeds, the fewest the ablations keep. Here :data:`ENSEMBLED_RECIPE` (the voice recipe at the time) is
trained with seeds 0 to ``max(ENSEMBLE_SIZES) - 1`` on inner test fold 0 of outer fold 0's training actors (as in
``ravdess_voice_neural_selection``; each seed rotates the validation actors) and the ensemble of the first ``n``
seeds is scored for every ``n`` of :data:`ENSEMBLE_SIZES`. Rule, written before the run: the record run uses the
largest size whose inner-fold ensemble UA is at least that of every smaller size (``python -m emotion_lib evaluate
--only ravdess_voice_neural --seeds 0 1 2 3 4`` for 5); otherwise it stays at 3 seeds. Outcome (2026-12-02): 3 seeds
66.7 %, 5 seeds 64.6 % UA on the inner fold, so the record run keeps 3 seeds.

Run with ``python -m emotion_lib evaluate --only ravdess_voice_ensemble_selection``.
"""

from __future__ import annotations

import dataclasses

from emotion_lib.experiments.common import Context, record_result
from emotion_lib.experiments.ravdess_voice_neural import inner_fold_runs, seed_ensemble
from emotion_lib.experiments.voice_recipes import CANDIDATES

GROUP = "ravdess_voice_ensemble_selection"
ENSEMBLE_SIZES = (3, 5)
"""Seed-ensemble sizes compared (the seeds are the context's first seed and the ones after it)."""
ENSEMBLED_RECIPE = CANDIDATES["compare_utterance"]
"""The recipe whose ensemble size this study chose (``VOICE_RECIPE`` until its refit variant replaced it; the record
run kept the 3 seeds chosen here)."""


def run_ensemble_selection(ctx: Context) -> list[dict]:
    """Train the voice recipe with ``max(ENSEMBLE_SIZES)`` seeds on the inner fold; record each size's ensemble."""
    seeds = tuple(range(ctx.seeds[0], ctx.seeds[0] + max(ENSEMBLE_SIZES)))
    per_seed, protocol, inner = inner_fold_runs(dataclasses.replace(ctx, seeds=seeds), ENSEMBLED_RECIPE, "ensemble")
    seeds = tuple(per_seed)  # one in a smoke run
    rows = []
    for size in (len(seeds),) if ctx.quick else ENSEMBLE_SIZES:
        members = {seed: per_seed[seed] for seed in seeds[:size]}
        result = seed_ensemble(members, f"voice_recipe_ensemble_{size}")
        description = f"voice recipe (VOICE_RECIPE), seed ensemble of {size} seeds (mean probabilities)"
        extra = {"role": "selection", "ensemble_size": size, "config": dataclasses.asdict(ENSEMBLED_RECIPE)}
        row_ctx = dataclasses.replace(ctx, seeds=tuple(members))
        row_protocol = f"{protocol}; seeds {', '.join(map(str, members))}"
        rows.append(
            record_result(
                row_ctx, f"{GROUP}/seeds_{size}", GROUP, "ravdess", row_protocol, inner, result, description, extra
            )
        )
    return rows
