"""CK+ expression recognition, 5 classes, subject-disjoint folds."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emotion_lib.data.corpora import load_ckplus48
from emotion_lib.evaluation.baselines import (
    BlockFusion,
    CVResult,
    InnerSelection,
    ModelSpec,
    grouped_cross_validation,
    logistic,
    pca_logistic,
)
from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.evaluation.records import record_not_run
from emotion_lib.experiments.common import Context, actor_folds, over_seeds, record_result
from emotion_lib.features.faces.expression import ExpressionBackend, descriptor_dim
from emotion_lib.features.faces.fer import FER2013_CLASSES, FER2013_TO_EMOTIONS
from emotion_lib.features.images import ckplus_features, facenet_ckplus_features, facenet_unavailable
from emotion_lib.labels import EMOTIONS

LOG = logging.getLogger(__name__)


def fer_zero_shot(probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Predictions of the FER2013 network restricted to ``classes`` (emotion names; argmax over their columns of
    :data:`~emotion_lib.features.faces.fer.FER2013_CLASSES`, matched by ``FER2013_TO_EMOTIONS``)."""
    source = {emotion: name for name, emotion in FER2013_TO_EMOTIONS.items() if emotion}
    columns = [FER2013_CLASSES.index(source[c]) for c in classes]
    scores = np.nan_to_num(probabilities[:, columns], nan=0.0)
    return np.asarray(classes)[np.argmax(scores, axis=1)]


GROUP = "ckplus"


@dataclass
class CKPlusData:
    """The CK+ sequences of one run and what every recorded row shares (labels, subjects, folds, protocol)."""

    sequences: pd.DataFrame
    labels: np.ndarray
    subjects: np.ndarray
    classes: list[str]
    folds: list[list[str]]
    protocol: str


def ckplus_data(ctx: Context) -> CKPlusData:
    """CK+ sequences (12 per class with ``ctx.quick``) and their subject-disjoint 5 folds."""
    sequences, _ = load_ckplus48(Path(ctx.data_dir) / "ckplus48")
    if ctx.quick:
        sequences = sequences.groupby("emotion", group_keys=False).head(12).reset_index(drop=True)
    labels, subjects = sequences["emotion"].to_numpy(), sequences["actor"].to_numpy()
    classes = [c for c in EMOTIONS if c in set(labels)]
    protocol = (
        f"subject-disjoint 5-fold CV over {len(set(subjects))} CK+ subjects ({len(sequences)} sequences, "
        f"{len(classes)} classes), inner {ctx.inner_folds}-fold subject-grouped model selection"
    )
    return CKPlusData(sequences, labels, subjects, classes, actor_folds("ckplus", subjects, n_folds=5), protocol)


def _record(ctx: Context, data: CKPlusData, name: str, result: CVResult, description: str, extra: dict) -> dict:
    return record_result(ctx, f"{GROUP}/{name}", GROUP, "ckplus", data.protocol, data.folds, result, description, extra)


def feature_models() -> dict[str, Callable[[int], ModelSpec]]:
    """Feature block -> the classifier trained on it (a factory of the seed)."""
    return {
        "pixels": lambda seed: pca_logistic(seed),
        "hog_lbp": lambda seed: logistic(seed, grid=(1e-3, 1e-2, 1e-1)),
        "dlib": lambda seed: logistic(seed, grid=(1e-2, 1e-1, 1.0)),
        "fer_features": lambda seed: logistic(seed, grid=(1e-2, 1e-1, 1.0)),
        "expression": lambda seed: logistic(seed, grid=(1e-3, 1e-2, 1e-1, 1.0)),
        "expression_wide": lambda seed: logistic(seed, grid=(1e-3, 1e-2, 1e-1, 1.0)),
        "expression_balanced": lambda seed: block_weighted_logistic(seed, ExpressionBackend.FER_DIM),
        "expression_selected": lambda seed: weighted_or_fused(seed, ExpressionBackend.FER_DIM, descriptor_dim(12, 3)),
    }


class FirstBlockWeight(TransformerMixin, BaseEstimator):
    """Multiply the first ``n`` (standardised) columns by ``weight``: with an L2 penalty, that block's coefficients
    cost ``1 / weight**2`` as much, so a small block (fer's 128 features) is not outweighed by a large one."""

    def __init__(self, n: int = 128, weight: float = 1.0) -> None:
        self.n, self.weight = n, weight

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> FirstBlockWeight:
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        weighted = np.array(features, dtype=np.float64, copy=True)
        weighted[:, : self.n] *= self.weight
        return weighted


def block_weighted_logistic(
    seed: int, n_first: int, weights: Sequence[float] = (1.0, 2.0, 3.0), grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0)
) -> ModelSpec:
    """L2 logistic regression (class-balanced) on standardised features whose first ``n_first`` columns are weighted
    by :class:`FirstBlockWeight`; the weight and C are chosen together by the inner subject-grouped folds."""
    classifier = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
    pipeline = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), FirstBlockWeight(n_first), classifier)
    return ModelSpec(
        "logistic_first_block_weighted",
        pipeline,
        {"firstblockweight__weight": list(weights), "logisticregression__C": list(grid)},
    )


def weighted_or_fused(seed: int, n_first: int, n_rest: int, inner_folds: int = 3) -> ModelSpec:
    """One classifier or one per block, chosen by the inner subject-grouped folds (:class:`InnerSelection`).

    The candidates read the same ``n_first + n_rest`` columns: :func:`block_weighted_logistic` (one L2 logistic
    regression, the first block's weight in the penalty chosen with C), and the late fusion (mean probabilities) of
    two logistic regressions, one on the first ``n_first`` columns and one on the other ``n_rest``, each with its own
    C (:class:`BlockFusion`). A per-block penalty is what the fusion has and the single classifier lacks.
    """
    members = [
        ("first_block", range(n_first), logistic(seed, grid=(1e-2, 1e-1, 1.0))),
        ("other_columns", range(n_first, n_first + n_rest), logistic(seed, grid=(1e-3, 1e-2, 1e-1))),
    ]
    candidates = [
        ("block_weighted", block_weighted_logistic(seed, n_first)),
        ("block_fusion", ModelSpec("block_fusion", BlockFusion(members, inner_folds))),
    ]
    return ModelSpec("block_weighted_or_fused_logistic", InnerSelection(candidates, inner_folds))


BACKEND_BLOCKS: dict[str, tuple[str, dict]] = {
    "expression": ("expression", {}),
    "expression_wide": ("expression", {"hog_cell": 8, "lbp_grid": 4}),
    "expression_balanced": ("expression", {}),
    "expression_selected": ("expression", {}),
}
"""Feature blocks of the ``expression`` face backend (fer features + HOG + LBP of one aligned chip): the compact
default (983-d) and the CK+ still-image descriptor's resolution (8x8 HOG cells, 4x4 LBP grid: 1972-d), each with a
plain logistic regression; ``expression_balanced`` is the compact default with the fer block weighted in the
penalty (:func:`block_weighted_logistic`); ``expression_selected`` the compact default with that classifier or a
late fusion of one classifier per block, whichever the inner folds prefer (:func:`weighted_or_fused`)."""


def block_features(ctx: Context, data: CKPlusData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The sequence-level ``(original, mirrored)`` features of feature block ``name``."""
    backend, options = BACKEND_BLOCKS.get(name, (name, {}))
    return ckplus_features(data.sequences, backend, ctx.cache_dir, **options)


def facenet_block(weights: Path | str | None) -> str:
    """The facenet feature block's name: ``facenet`` for the packaged CASIA-WebFace model, else named by the
    weights (``facenet_vggface2`` for facenet-pytorch's VGGFace2 download or ``facenet_<file stem>``)."""
    return "facenet" if weights is None else f"facenet_{Path(str(weights)).stem}"


def add_facenet(ctx: Context, data: CKPlusData, specs: dict, blocks: dict) -> None:
    """Add facenet's block and model (the packaged CASIA-WebFace model, or ``ctx.facenet_weights``); when it cannot
    run here, record why."""
    name, reason = facenet_block(ctx.facenet_weights), facenet_unavailable(ctx.facenet_weights)
    if reason:
        LOG.warning("ckplus/%s not run: %s", name, reason)
        record_not_run(f"{GROUP}/{name}", reason, ctx.command_for(GROUP), ctx.metrics_path)
    else:
        specs[name] = lambda seed: logistic(seed, grid=(1e-2, 1e-1, 1.0))
        blocks[name] = facenet_ckplus_features(data.sequences, ctx.facenet_weights, ctx.cache_dir)


def zero_shot_row(ctx: Context, data: CKPlusData) -> dict:
    """Record fer's FER2013 network without training (the reference row)."""
    fer_probabilities, _ = ckplus_features(data.sequences, "fer_probabilities", ctx.cache_dir)
    predicted = fer_zero_shot(fer_probabilities, data.classes)
    fold_metrics = [
        classification_metrics(
            data.labels[np.isin(data.subjects, fold)], predicted[np.isin(data.subjects, fold)], data.classes
        )
        for fold in data.folds
    ]
    labels = data.labels
    zero_shot = CVResult(
        "fer_zero_shot", data.classes, labels, predicted, None, np.zeros(len(labels), int), fold_metrics, [{}]
    )
    return _record(
        ctx,
        data,
        "fer_zero_shot",
        zero_shot,
        "fer's FER2013 network, no training: argmax over the 5 CK+ classes of its 7 outputs",
        {"role": "reference"},
    )


def feature_rows(ctx: Context, data: CKPlusData, name: str, factory: Callable[[int], ModelSpec], blocks: dict) -> list:
    """Record one feature block's classifier without and with mirrored training images."""
    original, mirrored = blocks[name]
    rows = []
    for augment in (False, True):
        result = over_seeds(
            lambda seed: grouped_cross_validation(
                factory(seed),
                original,
                data.labels,
                data.subjects,
                data.folds,
                ctx.inner_folds,
                data.classes,
                augmented=mirrored if augment else None,
            ),
            ctx.seeds,
        )
        rows.append(
            _record(
                ctx,
                data,
                f"{name}/mirror_augmented" if augment else name,
                result,
                f"{name} features, {factory(0).name}" + (", + mirrored training images" if augment else ""),
                {
                    "role": "baseline"
                    if (name in ("pixels", "dlib") or name.startswith("facenet")) and not augment
                    else "system",
                    "augmentation": "mirror" if augment else "none",
                },
            )
        )
    return rows


def late_fusion_row(ctx: Context, data: CKPlusData, specs: dict, blocks: dict) -> dict:
    """Record the late fusion of the HOG+LBP and fer-features classifiers (mirrored training images)."""
    fused = np.hstack([blocks["hog_lbp"][0], blocks["fer_features"][0]])
    fused_mirror = np.hstack([blocks["hog_lbp"][1], blocks["fer_features"][1]])
    n_hog = blocks["hog_lbp"][0].shape[1]

    def fusion(seed: int) -> ModelSpec:
        members = [
            ("hog_lbp", range(n_hog), specs["hog_lbp"](seed)),
            ("fer_features", range(n_hog, fused.shape[1]), specs["fer_features"](seed)),
        ]
        return ModelSpec("late_fusion", BlockFusion(members, ctx.inner_folds))

    result = over_seeds(
        lambda seed: grouped_cross_validation(
            fusion(seed),
            fused,
            data.labels,
            data.subjects,
            data.folds,
            ctx.inner_folds,
            data.classes,
            augmented=fused_mirror,
        ),
        ctx.seeds,
    )
    return _record(
        ctx,
        data,
        "late_fusion_hog_lbp_fer/mirror_augmented",
        result,
        "late fusion (mean probabilities) of HOG+LBP LR and fer-features LR, mirrored training images",
        {"role": "system", "augmentation": "mirror"},
    )


def run_ckplus(ctx: Context) -> list[dict]:
    """CK+ 5 classes, subject-disjoint 5-fold CV, one row per sequence (mean of its 3 frames).

    Pixels + PCA + LR, HOG + LBP + LR, the dlib and FaceNet (CASIA-WebFace, or ``ctx.facenet_weights``) identity
    embeddings + LR, fer's FER2013 network zero-shot and its penultimate (128-d) features + LR, the ``expression``
    backend (those features + HOG + LBP of the same aligned chip, :data:`BACKEND_BLOCKS`) + LR; each also with
    mirrored training images; then the late fusion of HOG + LBP and fer features.
    """
    data = ckplus_data(ctx)
    specs, blocks = feature_models(), {}
    add_facenet(ctx, data, specs, blocks)
    out = [zero_shot_row(ctx, data)]
    for name, factory in specs.items():
        if name not in blocks:
            blocks[name] = block_features(ctx, data, name)
        out += feature_rows(ctx, data, name, factory, blocks)
    out.append(late_fusion_row(ctx, data, specs, blocks))
    return out
