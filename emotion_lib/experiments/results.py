"""Reading recorded results back: recall tables, the real-data records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from emotion_lib.evaluation.records import METRICS_PATH, load_metrics

HUMAN_ACCURACY_CREMA_D = {"voice": 40.9, "face": 58.2, "audio-visual": 63.6}
"""Human raters' accuracy (%) on CREMA-D (Cao et al. 2014), shown beside the model's."""


def recall_table(experiments: dict[str, dict], names: Sequence[str]) -> pd.DataFrame:
    """Per-class recall (mean over folds) of the named experiments: one row per experiment."""
    rows = {
        name: {cls: value["mean"] for cls, value in experiments[name]["metrics"]["per_class_recall"].items()}
        for name in names
        if name in experiments
    }
    return pd.DataFrame.from_dict(rows, orient="index")


REAL_CORPORA = ("ravdess", "ckplus", "ravdess->savee", "ravdess-faces", "crema-d")
"""Corpus labels of the real-data records in ``metrics.json``."""


def real_data_results(metrics_path: Path | str = METRICS_PATH) -> dict[str, dict]:
    """The recorded real-data experiments (RAVDESS, CK+, RAVDESS->SAVEE) of ``metrics_path``."""
    return {
        name: record
        for name, record in load_metrics(metrics_path)["experiments"].items()
        if record.get("corpus") in REAL_CORPORA
    }
