"""Clip-level fusion of OpenFace action units and eGeMAPS functionals on RAVDESS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.evaluation.baselines import (
    BlockFusion,
    InnerSelection,
    ModelSpec,
    grouped_cross_validation,
    logistic,
    speaker_normalise,
    svm_rbf,
)
from emotion_lib.experiments.common import (
    NORMALISATIONS,
    Context,
    actor_folds,
    audio_functionals,
    over_seeds,
    record_result,
)
from emotion_lib.labels import EMOTIONS


def load_openface_aus(path: Path, clips: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Clip-level OpenFace AUs (``ravdess-openface-au.csv``) aligned with RAVDESS ``clips`` by recording."""
    if not path.exists():
        raise FileNotFoundError(f"OpenFace action-unit table not found: {path}")
    table = pd.read_csv(path, dtype={"clip": str})
    table.index = table.pop("clip").str.split("-", n=1).str[1]  # drop the modality code: 01-<tail> -> <tail>
    kept = clips[clips["clip_id"].isin(table.index)].reset_index(drop=True)
    return table.loc[kept["clip_id"]].to_numpy(dtype=np.float64), kept


def fusion_variants(
    face: np.ndarray, audio: np.ndarray, inner_folds: int
) -> dict[str, tuple[np.ndarray, Callable[[int], ModelSpec]]]:
    """Variant -> (features, model factory of the seed): each modality alone, early and late fusions, and the
    fusion chosen per outer fold by inner folds (``selected_fusion``)."""
    n_au = face.shape[1]
    both = np.hstack([face, audio])
    fusions = {
        "early_fusion_lr": lambda seed: logistic(seed),
        "late_fusion_lr": lambda seed: ModelSpec(
            "late_fusion",
            BlockFusion(
                [("face_au", range(n_au), logistic(seed)), ("voice", range(n_au, both.shape[1]), logistic(seed))],
                inner_folds,
            ),
        ),
        "late_fusion_svm": lambda seed: ModelSpec(
            "late_fusion",
            BlockFusion(
                [("face_au", range(n_au), svm_rbf(seed)), ("voice", range(n_au, both.shape[1]), svm_rbf(seed))],
                inner_folds,
            ),
        ),
    }
    return {
        "face_au_lr": (face, lambda seed: logistic(seed)),
        "voice_egemaps_lr": (audio, lambda seed: logistic(seed)),
        **{name: (both, factory) for name, factory in fusions.items()},
        "selected_fusion": (
            both,
            lambda seed: ModelSpec(
                "selected_fusion",
                InnerSelection([(name, factory(seed)) for name, factory in fusions.items()], inner_folds),
            ),
        ),
    }


def run_ravdess_fusion(ctx: Context) -> list[dict]:
    """Clip-level fusion on RAVDESS actors 01-18: OpenFace AUs (face) + eGeMAPS functionals (voice). With
    ``ctx.quick``: 8 clips per actor, 3 outer folds of 6 actors and 2 inner folds (the nested selection's cost grows
    with the square of the inner folds)."""
    clips = ravdess_speech_clips(ctx.data_dir, subset=8 if ctx.quick else 0)
    inner_folds = 2 if ctx.quick else ctx.inner_folds
    aus, clips = load_openface_aus(Path(ctx.data_dir) / "ravdess-openface-au.csv", clips)
    voice, kept = audio_functionals(clips, "eGeMAPSv02", ctx.cache_dir)
    aus = aus[clips["clip_id"].isin(kept["clip_id"]).to_numpy()]
    labels, actors = kept["emotion"].to_numpy(), kept["actor"].to_numpy()
    folds = actor_folds("ravdess", actors, n_folds=3 if ctx.quick else None)
    protocol = (
        f"actor-grouped {len(folds)}-fold CV over RAVDESS actors 01-18 (clip level), inner "
        f"{inner_folds}-fold actor-grouped model selection"
    )
    out = []
    for norm in NORMALISATIONS:
        face, audio = (
            (speaker_normalise(aus, actors), speaker_normalise(voice, actors)) if norm == "speaker" else (aus, voice)
        )
        for variant, (x, factory) in fusion_variants(face, audio, inner_folds).items():
            result = over_seeds(
                lambda seed: grouped_cross_validation(factory(seed), x, labels, actors, folds, inner_folds, EMOTIONS),
                ctx.seeds,
            )
            modality = "face" if variant.startswith("face") else "voice" if variant.startswith("voice") else "fusion"
            out.append(
                record_result(
                    ctx,
                    f"ravdess_fusion/{variant}/{norm}",
                    "ravdess_fusion",
                    "ravdess",
                    protocol,
                    folds,
                    result,
                    f"{variant.replace('_', ' ')}, {norm} normalisation",
                    {"modality": modality, "normalisation": norm},
                )
            )
    return out
