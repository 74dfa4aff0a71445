"""Fewer columns for wide per-clip vectors (e.g. ComParE's 6373 functionals), fitted on the training clips only.

A model with a few hundred training clips and a 6373-wide input has a first Dense layer of 6373 x units weights.
:func:`reduce_utterances` fits a scikit-learn reducer on the training rows and applies it to every row, so the model
sees ``components`` columns instead. Reducers are a registry (:data:`UTTERANCE_REDUCERS`): a name and a factory.

- ``"pca"``: principal components of the training rows (label-free; scores, not whitened);
- ``"anova"``: the ``components`` columns with the highest ANOVA F value between the classes of the training rows
  (reads the training labels only; columns constant on the training rows, whose F is undefined, are dropped first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
from sklearn.pipeline import make_pipeline

UTTERANCE_REDUCERS: dict[str, Callable[[int, int], TransformerMixin]] = {
    "pca": lambda components, seed: PCA(components, random_state=seed),
    "anova": lambda components, seed: make_pipeline(VarianceThreshold(), SelectKBest(f_classif, k=components)),
}
"""Reducer name -> factory ``(components, seed) -> unfitted scikit-learn transformer``."""


def check_reducer(name: str, components: int) -> None:
    """Raise ``ValueError`` unless ``name`` is ``""`` (no reduction) or a known reducer with ``components >= 1``."""
    if name and name not in UTTERANCE_REDUCERS:
        known = ", ".join(sorted(UTTERANCE_REDUCERS))
        raise ValueError(f"utterance reducer must be one of {known} or '', got {name!r}")
    if name and components < 1:
        raise ValueError(f"the {name!r} reducer needs components >= 1, got {components}")


def reduce_utterances(
    vectors: np.ndarray,
    fit_rows: np.ndarray,
    labels: Sequence,
    reducer: str,
    components: int,
    seed: int = 0,
) -> np.ndarray:
    """``vectors (n, D)`` reduced to ``(n, components)`` by ``reducer`` fitted on the ``fit_rows`` rows only.

    Args:
        vectors: one row per clip, already normalised.
        fit_rows: boolean mask of the training rows; nothing of the other rows is read by the fit.
        labels: one label per row; only the training rows' labels are read (by ``"anova"``).
        reducer: a name in :data:`UTTERANCE_REDUCERS`.
        components: columns kept; at most ``D`` (and, for ``"pca"``, at most the number of training rows).
        seed: for reducers with randomness.

    Returns:
        float32 ``(n, components)``.
    """
    check_reducer(reducer, components)
    vectors, fit = np.asarray(vectors, dtype=np.float64), np.flatnonzero(fit_rows)
    limit = min(vectors.shape[1], len(fit)) if reducer == "pca" else vectors.shape[1]
    if components > limit:
        shape = f"{vectors.shape[1]} columns, {len(fit)} rows"
        raise ValueError(f"cannot keep {components} {reducer} components of {shape}")
    model = UTTERANCE_REDUCERS[reducer](components, seed).fit(vectors[fit], np.asarray(labels)[fit])
    return model.transform(vectors).astype(np.float32)
