"""Experiments: the real-data studies behind the results table and the ablations of notebook 05.

Nothing in the library imports this package; it sits on top of everything else.
"""

from emotion_lib.experiments.ablations import (
    ABLATIONS,
    ablation_variants,
    choose_ablations,
    run_ablations,
    summarise_ablations,
)
from emotion_lib.experiments.common import Context
from emotion_lib.experiments.registry import EXPERIMENTS, pending_experiments, run_experiments
from emotion_lib.experiments.results import HUMAN_ACCURACY_CREMA_D, real_data_results, recall_table, write_results
from emotion_lib.experiments.run_cache import neural_test_metrics
from emotion_lib.experiments.targets import TARGETS, Target, target_status

__all__ = [
    "ABLATIONS",
    "Context",
    "EXPERIMENTS",
    "HUMAN_ACCURACY_CREMA_D",
    "TARGETS",
    "Target",
    "ablation_variants",
    "choose_ablations",
    "neural_test_metrics",
    "pending_experiments",
    "real_data_results",
    "recall_table",
    "run_ablations",
    "run_experiments",
    "summarise_ablations",
    "target_status",
    "write_results",
]
