"""Which recipe the shipped ``voice`` model is trained with, decided under the shipped model's conditions.

A shipped model meets single clips of unknown speakers, so it normalises frames and functionals with the global
statistics of its training clips, not per speaker as the voice study's cross-validation does. Here each recipe of
:data:`COMPARED` is scored that way on the inner test fold of outer fold 0's training actors (RAVDESS actors of
folds 1-5; validation actors rotated by the seed; SAVEE's clips added to every training side, as the shipped
models train on them; 3 seeds). The recipe with the higher mean UA is the one
:data:`~emotion_lib.experiments.pretrained.SHIPPED_VOICE` names. No actor of outer fold 0 and none of the shipped
models' held-out actors is read.

Run with ``python -m emotion_lib evaluate --only voice_shipping_selection``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emotion_lib.experiments.common import Context, neural_seeds, record_result
from emotion_lib.experiments.pretrained import VOICE_EGEMAPS, VOICE_EGEMAPS_REFIT, VOICE_UTTERANCE, Recipe
from emotion_lib.experiments.ravdess_voice_neural import inner_fold_result

GROUP = "voice_shipping_selection"
COMPARED: dict[str, Recipe] = {
    "egemaps_frames": VOICE_EGEMAPS,
    "compare_utterance": VOICE_UTTERANCE,
    "egemaps_frames_refit": VOICE_EGEMAPS_REFIT,
}
"""The candidate recipes of the shipped ``voice`` model: eGeMAPSv02 frames with ``ravdess_neural``'s configuration,
the voice study's recipe (ComParE_2016 frames and functionals), and the first refitted after early stopping on its
training and validation actors together for the early-stopped epochs (the voice study's ``refit``; a shipped model
would gain the 3 validation actors). Rule for the refit, written before its run: the shipped ``voice`` is refitted
if ``egemaps_frames_refit``'s mean UA is above ``egemaps_frames``' (51.9 %) on the same fold."""
ADDED_CORPORA = ("savee",)
"""Corpora added to every training side, as in the shipped recipes (the CREMA-D clips here are all held out)."""


def run_voice_shipping_selection(ctx: Context, names: Sequence[str] | None = None) -> list[dict]:
    """Score the :data:`COMPARED` recipes ``names`` (default all) with global normalisation on the inner fold
    (3 seeds) and record them."""
    ctx, rows = dataclasses.replace(ctx, seeds=neural_seeds(ctx)), []
    for name in names or COMPARED:
        recipe = COMPARED[name]
        frame_set = recipe.extraction.audio_feature_set
        result, protocol, inner = inner_fold_result(ctx, recipe.config, name, frame_set, "global", ADDED_CORPORA)
        description = (
            f"shipped voice candidate {name!r} ({frame_set} frames"
            + (f" + {recipe.config.utterance_features} functionals" if recipe.config.utterance_features else "")
            + "), global normalisation as a shipped model has it, SAVEE clips added to each training side"
        )
        extra = {"role": "selection", "candidate": name, "config": dataclasses.asdict(recipe.config)}
        rows.append(
            record_result(ctx, f"{GROUP}/{name}", GROUP, "ravdess", protocol, inner, result, description, extra)
        )
    return rows
