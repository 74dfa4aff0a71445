"""Evaluation: metrics, recorded results, the results table and the classical baselines."""

from emotion_lib.evaluation.baselines import BASELINES, CVResult, ModelSpec, grouped_cross_validation, speaker_normalise
from emotion_lib.evaluation.metrics import (
    aggregate,
    classification_metrics,
    per_class_recall,
    unweighted_accuracy,
    weighted_accuracy,
)
from emotion_lib.evaluation.records import (
    METRICS_PATH,
    ExperimentRecord,
    load_metrics,
    record_experiment,
    record_not_run,
)
from emotion_lib.evaluation.reports import results_markdown

__all__ = [
    "BASELINES",
    "CVResult",
    "ExperimentRecord",
    "METRICS_PATH",
    "ModelSpec",
    "aggregate",
    "classification_metrics",
    "grouped_cross_validation",
    "load_metrics",
    "per_class_recall",
    "record_experiment",
    "record_not_run",
    "results_markdown",
    "speaker_normalise",
    "unweighted_accuracy",
    "weighted_accuracy",
]
