"""CK+ expression recognition, 5 classes, subject-disjoint folds."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emotion_lib.data.corpora import load_ckplus48
from emotion_lib.evaluation.baselines import (
    BlockFusion,
    CVResult,
    ModelSpec,
    grouped_cross_validation,
    logistic,
    pca_logistic,
)
from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.evaluation.records import record_not_run
from emotion_lib.experiments.common import Context, actor_folds, over_seeds, record_result
from emotion_lib.features.images import ckplus_features, facenet_ckplus_features, facenet_unavailable
from emotion_lib.labels import EMOTIONS

LOG = logging.getLogger(__name__)


FER2013_CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprised", "neutral")
"""Output order of fer's FER2013 network (angry, disgust, fear, happy, sad, surprise, neutral)."""


def fer_zero_shot(probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Predictions of the FER2013 network restricted to ``classes`` (argmax over those columns only)."""
    columns = [FER2013_CLASSES.index(c) for c in classes]
    scores = np.nan_to_num(probabilities[:, columns], nan=0.0)
    return np.asarray(classes)[np.argmax(scores, axis=1)]


def run_ckplus(ctx: Context) -> list[dict]:
    """CK+ 5 classes, subject-disjoint 5-fold CV, one row per sequence (mean of its 3 frames).

    Pixels + PCA + LR, HOG + LBP + LR, the dlib identity embedding + LR, facenet's (with local weights, see
    :func:`facenet_unavailable`), fer's FER2013 network zero-shot and its penultimate (128-d) features + LR; each
    also with mirrored training images.
    """
    sequences, _ = load_ckplus48(Path(ctx.data_dir) / "ckplus48")
    if ctx.quick:
        sequences = sequences.groupby("emotion", group_keys=False).head(12).reset_index(drop=True)
    labels, subjects = sequences["emotion"].to_numpy(), sequences["actor"].to_numpy()
    classes = [c for c in EMOTIONS if c in set(labels)]
    folds = actor_folds("ckplus", subjects, n_folds=5)
    protocol = (
        f"subject-disjoint 5-fold CV over {len(set(subjects))} CK+ subjects ({len(sequences)} sequences, "
        f"{len(classes)} classes), inner {ctx.inner_folds}-fold subject-grouped model selection"
    )
    specs: dict[str, Callable[[int], ModelSpec]] = {
        "pixels": lambda seed: pca_logistic(seed),
        "hog_lbp": lambda seed: logistic(seed, grid=(1e-3, 1e-2, 1e-1)),
        "dlib": lambda seed: logistic(seed, grid=(1e-2, 1e-1, 1.0)),
        "fer_features": lambda seed: logistic(seed, grid=(1e-2, 1e-1, 1.0)),
    }
    blocks = {}
    reason = facenet_unavailable(ctx.facenet_weights)
    if reason:
        LOG.warning("ckplus/facenet not run: %s", reason)
        record_not_run(
            "ckplus/facenet", reason, ctx.command + " --only ckplus --facenet-weights PATH", ctx.metrics_path
        )
    else:
        specs["facenet"] = lambda seed: logistic(seed, grid=(1e-2, 1e-1, 1.0))
        blocks["facenet"] = facenet_ckplus_features(sequences, ctx.facenet_weights, ctx.cache_dir)
    out = []
    fer_probabilities, _ = ckplus_features(sequences, "fer_probabilities", ctx.cache_dir)
    predicted = fer_zero_shot(fer_probabilities, classes)
    zero_shot = CVResult(
        "fer_zero_shot",
        classes,
        labels,
        predicted,
        None,
        np.zeros(len(labels), int),
        [
            classification_metrics(labels[np.isin(subjects, fold)], predicted[np.isin(subjects, fold)], classes)
            for fold in folds
        ],
        [{}],
    )
    out.append(
        record_result(
            ctx,
            "ckplus/fer_zero_shot",
            "ckplus",
            "ckplus",
            protocol,
            folds,
            zero_shot,
            "fer's FER2013 network, no training: argmax over the 5 CK+ classes of its 7 outputs",
            {"role": "reference"},
        )
    )
    for name, factory in specs.items():
        if name not in blocks:
            blocks[name] = ckplus_features(sequences, name, ctx.cache_dir)
        original, mirrored = blocks[name]
        for augment in (False, True):
            result = over_seeds(
                lambda seed: grouped_cross_validation(
                    factory(seed),
                    original,
                    labels,
                    subjects,
                    folds,
                    ctx.inner_folds,
                    classes,
                    augmented=mirrored if augment else None,
                ),
                ctx.seeds,
            )
            suffix = "/mirror_augmented" if augment else ""
            out.append(
                record_result(
                    ctx,
                    f"ckplus/{name}{suffix}",
                    "ckplus",
                    "ckplus",
                    protocol,
                    folds,
                    result,
                    f"{name} features, {factory(0).name}" + (", + mirrored training images" if augment else ""),
                    {
                        "role": "baseline" if name in ("pixels", "dlib", "facenet") and not augment else "system",
                        "augmentation": "mirror" if augment else "none",
                    },
                )
            )
    fused = np.hstack([blocks["hog_lbp"][0], blocks["fer_features"][0]])
    fused_mirror = np.hstack([blocks["hog_lbp"][1], blocks["fer_features"][1]])
    n_hog = blocks["hog_lbp"][0].shape[1]
    result = over_seeds(
        lambda seed: grouped_cross_validation(
            ModelSpec(
                "late_fusion",
                BlockFusion(
                    [
                        ("hog_lbp", range(n_hog), specs["hog_lbp"](seed)),
                        ("fer_features", range(n_hog, fused.shape[1]), specs["fer_features"](seed)),
                    ],
                    ctx.inner_folds,
                ),
            ),
            fused,
            labels,
            subjects,
            folds,
            ctx.inner_folds,
            classes,
            augmented=fused_mirror,
        ),
        ctx.seeds,
    )
    out.append(
        record_result(
            ctx,
            "ckplus/late_fusion_hog_lbp_fer/mirror_augmented",
            "ckplus",
            "ckplus",
            protocol,
            folds,
            result,
            "late fusion (mean probabilities) of HOG+LBP LR and fer-features LR, mirrored training images",
            {"role": "system", "augmentation": "mirror"},
        )
    )
    return out
