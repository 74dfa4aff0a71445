"""Classic baselines and the nested, speaker-grouped cross-validation every real-data experiment uses.

- eGeMAPSv02 functionals + RBF SVM, ComParE_2016 functionals + a linear classifier, the majority class;
- :func:`fit_with_inner_cv` picks hyperparameters by inner actor-grouped folds on the training actors only
  (scored by UA, sklearn's ``balanced_accuracy``), then refits on all training actors;
- :func:`grouped_cross_validation` runs the outer actor-disjoint folds and returns out-of-fold predictions,
  probabilities and per-fold metrics.

Per-speaker normalisation z-scores each speaker's clips with that speaker's own mean and standard
deviation (no labels used, so it is legitimate for test speakers too); global normalisation is the
``StandardScaler`` inside each pipeline, fitted on the training actors of the fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from emotion_lib.evaluation.metrics import aggregate, classification_metrics
from emotion_lib.features.reduction import UTTERANCE_REDUCERS, check_reducer


@dataclass
class ModelSpec:
    """An estimator, the grid searched by inner folds, and whether the final refit is calibrated.

    ``calibrate`` wraps the final model in a sigmoid :class:`CalibratedClassifierCV` fitted on speaker-grouped
    folds, so that models without ``predict_proba`` (an SVM) give probabilities for late fusion.
    """

    name: str
    estimator: BaseEstimator
    grid: dict[str, Sequence[Any]] = field(default_factory=dict)
    calibrate: bool = False


def _pipeline(*steps: BaseEstimator) -> Pipeline:
    """Median imputation and standardisation, then ``steps`` (the last one the classifier)."""
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), *steps)


def svm_rbf(seed: int = 0) -> ModelSpec:
    """RBF SVM with class-balanced weights; C and gamma chosen by inner folds."""
    return ModelSpec(
        "svm_rbf",
        _pipeline(SVC(kernel="rbf", class_weight="balanced", random_state=seed)),
        {"svc__C": [1.0, 10.0, 100.0], "svc__gamma": ["scale", 0.003]},
        calibrate=True,
    )


def logistic(seed: int = 0, grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0)) -> ModelSpec:
    """L2 logistic regression (multinomial, class-balanced); C chosen by inner folds."""
    classifier = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
    return ModelSpec("logistic", _pipeline(classifier), {"logisticregression__C": list(grid)})


def pca_logistic(
    seed: int = 0, components: Sequence[int] = (50, 100), grid: Sequence[float] = (1e-2, 1e-1, 1.0)
) -> ModelSpec:
    """Standardise, PCA, then logistic regression; the number of components and C chosen by inner folds."""
    classifier = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed)
    pipeline = make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        PCA(n_components=components[0], random_state=seed),
        classifier,
    )
    return ModelSpec(
        "pca_logistic", pipeline, {"pca__n_components": list(components), "logisticregression__C": list(grid)}
    )


def ridge(
    seed: int = 0, grid: Sequence[float] = (10.0, 100.0, 1000.0, 10000.0), reducer: str = "", components: int = 0
) -> ModelSpec:
    """Ridge (least-squares) linear classifier, class-balanced, for very wide inputs such as ComParE's 6373
    functionals (solved in the sample space, so fast); alpha chosen by inner folds, calibrated probabilities.
    With ``reducer`` (a name in :data:`~emotion_lib.features.reduction.UTTERANCE_REDUCERS`) the standardised
    features are first reduced to ``components`` columns, fitted on each fit's training rows."""
    check_reducer(reducer, components)
    reduction = [UTTERANCE_REDUCERS[reducer](components, seed)] if reducer else []
    return ModelSpec(
        f"ridge_{reducer}{components}" if reducer else "ridge",
        _pipeline(*reduction, RidgeClassifier(class_weight="balanced")),
        {"ridgeclassifier__alpha": list(grid)},
        calibrate=True,
    )


def majority() -> ModelSpec:
    """Predicts the most frequent training class for every clip."""
    return ModelSpec("majority", DummyClassifier(strategy="most_frequent"))


BASELINES: dict[str, tuple[str, Callable[[int], ModelSpec]]] = {
    "egemaps_svm": ("eGeMAPSv02", svm_rbf),
    "compare_linear": ("ComParE_2016", ridge),
    "majority": ("eGeMAPSv02", lambda seed: majority()),
}
"""Baseline name -> (openSMILE functional set, model factory taking a seed)."""


def speaker_normalise(features: np.ndarray, speakers: Sequence) -> np.ndarray:
    """Z-score every column of a clip-level table within each speaker, with that speaker's own statistics.

    Uses :class:`emotion_lib.features.Normaliser` in ``'speaker'`` mode on one-row sequences. No label is
    used, so test speakers are normalised with their own unlabelled clips (label-free speaker adaptation).
    """
    from emotion_lib.features.normalise import Normaliser

    features = np.asarray(features, dtype=np.float64)
    speakers = [str(s) for s in speakers]
    if len(speakers) != len(features):
        raise ValueError(f"{len(speakers)} speaker ids for {len(features)} rows")
    rows = [row[None, :] for row in features]
    normaliser = Normaliser("speaker").fit(rows, speakers)
    return np.vstack([normaliser.transform(row, speaker) for row, speaker in zip(rows, speakers)])


def fit_with_inner_cv(
    spec: ModelSpec, features: np.ndarray, labels: np.ndarray, groups: np.ndarray, inner_folds: int = 3
) -> tuple[BaseEstimator, dict[str, Any]]:
    """Choose ``spec.grid`` by UA on inner folds grouped by speaker (training speakers only), refit on all.

    Returns the fitted estimator and the chosen parameters. Without a grid the estimator is fitted as is.
    """
    chosen: dict[str, Any] = {}
    n_groups = len(np.unique(groups))
    if spec.grid and n_groups >= 2:
        search = GridSearchCV(
            clone(spec.estimator),
            spec.grid,
            scoring="balanced_accuracy",
            cv=GroupKFold(n_splits=min(inner_folds, n_groups)),
            n_jobs=1,
            refit=False,
        )
        search.fit(features, labels, groups=groups)
        chosen = dict(search.best_params_)
    model = clone(spec.estimator).set_params(**chosen)
    if spec.calibrate and n_groups >= 2:
        splits = list(GroupKFold(n_splits=min(inner_folds, n_groups)).split(features, labels, groups))
        model = CalibratedClassifierCV(model, method="sigmoid", cv=splits, ensemble=False)
    if getattr(model, "fits_with_groups", False):
        model.fit(features, labels, groups=groups)
        chosen = model.chosen_params_
    else:
        model.fit(features, labels)
    return model, chosen


class BlockFusion(ClassifierMixin, BaseEstimator):
    """Late fusion: one model per block of columns (a modality or a feature set), probabilities averaged.

    ``members`` is a list of ``(name, column indices, ModelSpec)``. Each member's hyperparameters are chosen
    by its own inner speaker-grouped folds on the training speakers (:func:`fit_with_inner_cv`).
    ``weights`` (one per member, default equal) weigh the averaged probabilities.
    """

    fits_with_groups = True

    def __init__(
        self,
        members: list[tuple[str, Sequence[int], ModelSpec]],
        inner_folds: int = 3,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.members, self.inner_folds, self.weights = members, inner_folds, weights

    def fit(self, features: np.ndarray, labels: Sequence, groups: Sequence | None = None) -> BlockFusion:
        features, labels = np.asarray(features), np.asarray(labels)
        groups = np.asarray(groups) if groups is not None else np.arange(len(labels))
        self.classes_ = np.unique(labels)
        self.models_, members = [], {}
        for name, columns, spec in self.members:
            model, chosen = fit_with_inner_cv(spec, features[:, list(columns)], labels, groups, self.inner_folds)
            self.models_.append(model)
            members[name] = chosen
        self.chosen_params_ = {"members": members}
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features)
        weights = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights, dtype=float)
        total = np.zeros((len(features), len(self.classes_)))
        for weight, (_, columns, _), model in zip(weights, self.members, self.models_):
            proba = model.predict_proba(features[:, list(columns)])
            total[:, np.searchsorted(self.classes_, model.classes_)] += weight * proba
        return total / weights.sum()

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]


def inner_ua(
    spec: ModelSpec, features: np.ndarray, labels: np.ndarray, groups: np.ndarray, inner_folds: int = 3
) -> float:
    """Mean UA of ``spec`` over speaker-grouped folds of the given (training) rows; each fold's model is fitted
    by :func:`fit_with_inner_cv` on the other speakers, so its own choices stay inside them too."""
    scores = []
    for train, held_out in GroupKFold(n_splits=min(inner_folds, len(np.unique(groups)))).split(
        features, labels, groups
    ):
        model, _ = fit_with_inner_cv(spec, features[train], labels[train], groups[train], inner_folds)
        scores.append(balanced_accuracy_score(labels[held_out], model.predict(features[held_out])))
    return float(np.mean(scores))


class InnerSelection(ClassifierMixin, BaseEstimator):
    """Chooses one of several candidate models (e.g. early vs late fusion) by UA on inner speaker-grouped folds
    of the training speakers only (:func:`inner_ua`), then refits the chosen one on all training speakers."""

    fits_with_groups = True

    def __init__(self, candidates: list[tuple[str, ModelSpec]], inner_folds: int = 3) -> None:
        self.candidates, self.inner_folds = candidates, inner_folds

    def fit(self, features: np.ndarray, labels: Sequence, groups: Sequence | None = None) -> InnerSelection:
        features, labels = np.asarray(features), np.asarray(labels)
        groups = np.asarray(groups) if groups is not None else np.arange(len(labels))
        scores = {name: inner_ua(spec, features, labels, groups, self.inner_folds) for name, spec in self.candidates}
        self.chosen_ = max(scores, key=scores.get)
        spec = dict(self.candidates)[self.chosen_]
        self.model_, params = fit_with_inner_cv(spec, features, labels, groups, self.inner_folds)
        self.classes_ = self.model_.classes_
        self.chosen_params_ = {
            "chosen": self.chosen_,
            "inner_ua": {k: round(v, 4) for k, v in scores.items()},
            "params": params,
        }
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.model_.predict(features)


@dataclass
class CVResult:
    """Out-of-fold predictions and metrics of one model over the outer folds."""

    name: str
    labels: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    fold_of: np.ndarray
    fold_metrics: list[dict[str, Any]]
    chosen_params: list[dict[str, Any]]

    @property
    def summary(self) -> dict[str, Any]:
        """Mean and standard deviation over folds (confusion counts summed)."""
        return aggregate(self.fold_metrics)

    @property
    def pooled(self) -> dict[str, Any]:
        """Metrics of all out-of-fold predictions pooled."""
        return classification_metrics(self.y_true, self.y_pred, self.labels)


def grouped_cross_validation(
    spec: ModelSpec,
    features: np.ndarray,
    labels: Sequence,
    groups: Sequence,
    folds: Sequence[Sequence],
    inner_folds: int = 3,
    class_order: Sequence[str] | None = None,
    augmented: np.ndarray | None = None,
    per_speaker: bool = False,
) -> CVResult:
    """Outer folds hold out the speakers in each ``folds`` entry; nothing of theirs reaches training.

    Hyperparameters are chosen inside :func:`fit_with_inner_cv` on the training speakers only.
    ``augmented`` (same shape as ``features``, row for row: e.g. the features of mirrored images) adds extra
    training rows with the same labels and speakers; it never reaches a test fold. With ``per_speaker`` the
    metrics are computed per test speaker instead of per fold (e.g. one fold holding a whole other corpus).
    """
    features = np.asarray(features)
    labels, groups = np.asarray(labels), np.asarray(groups)
    order = [c for c in (class_order or sorted(set(labels))) if c in set(labels)]
    y_pred = np.empty(len(labels), dtype=object)
    proba = np.full((len(labels), len(order)), np.nan)
    fold_of = np.full(len(labels), -1)
    fold_metrics, chosen_params = [], []
    for index, test_speakers in enumerate(folds):
        test = np.isin(groups, list(test_speakers))
        if not test.any():
            raise ValueError(f"fold {index}: none of the speakers {list(test_speakers)} has clips")
        train = ~test
        x_train, y_train, g_train = features[train], labels[train], groups[train]
        if augmented is not None:
            x_train = np.vstack([x_train, np.asarray(augmented)[train]])
            y_train, g_train = np.tile(y_train, 2), np.tile(g_train, 2)
        model, chosen = fit_with_inner_cv(spec, x_train, y_train, g_train, inner_folds)
        y_pred[test] = model.predict(features[test])
        if hasattr(model, "predict_proba"):
            columns = [order.index(c) for c in model.classes_]
            proba[np.ix_(np.flatnonzero(test), columns)] = model.predict_proba(features[test])
        fold_of[test] = index
        units = [groups == speaker for speaker in test_speakers] if per_speaker else [test]
        fold_metrics += [classification_metrics(labels[unit], y_pred[unit], order) for unit in units if unit.any()]
        chosen_params.append(chosen)
    scored = fold_of >= 0
    return CVResult(
        spec.name,
        order,
        labels[scored],
        y_pred[scored].astype(str),
        None if np.isnan(proba[scored]).all() else proba[scored],
        fold_of[scored],
        fold_metrics,
        chosen_params,
    )


def late_fusion_of(
    results: Sequence[CVResult], name: str = "late_fusion", weights: Sequence[float] | None = None
) -> CVResult:
    """Late fusion of models already cross-validated on the same rows and folds: averaged out-of-fold
    probabilities (each member's probabilities come from its model that never saw the test speakers)."""
    first = results[0]
    for other in results[1:]:
        if (
            other.labels != first.labels
            or not np.array_equal(other.fold_of, first.fold_of)
            or not np.array_equal(other.y_true, first.y_true)
        ):
            raise ValueError(f"{first.name} and {other.name} were not run on the same rows and folds")
    if any(result.proba is None for result in results):
        raise ValueError("late fusion needs probabilities from every member")
    weights = np.ones(len(results)) if weights is None else np.asarray(weights, dtype=float)
    proba = sum(w * r.proba for w, r in zip(weights, results)) / weights.sum()
    y_pred = np.asarray(first.labels)[np.nan_to_num(proba, nan=-1.0).argmax(axis=1)]
    fold_metrics = [
        classification_metrics(first.y_true[first.fold_of == fold], y_pred[first.fold_of == fold], first.labels)
        for fold in np.unique(first.fold_of)
    ]
    chosen = [{r.name: r.chosen_params[i] for r in results} for i in range(len(first.chosen_params))]
    return CVResult(name, first.labels, first.y_true, y_pred, proba, first.fold_of, fold_metrics, chosen)
