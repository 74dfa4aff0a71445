"""Where things live: repository root, shared real-data folder, reports, caches."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed ``emotion_lib`` package; files the library reads at run time ship inside it (package data)."""
REPO_ROOT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else Path.cwd()
"""The checkout holding the package; for a copy installed with ``pip install .`` (no checkout around it), the
working folder at import time, so that ``data/`` and ``reports/`` are written there and not into site-packages."""
REPORTS_DIR = Path(os.environ.get("EMOTION_REPORTS", REPO_ROOT / "reports"))
"""Executed notebooks, figures, metrics, models; ``EMOTION_REPORTS`` moves it (the notebook tests do)."""
FIGURES_DIR = REPORTS_DIR / "figures"
METRICS_PATH = REPORTS_DIR / "metrics.json"
"""Every recorded experiment (``emotion_lib.evaluation.records``), from which the results table is written."""
MODELS_DIR = REPORTS_DIR / "models"
"""Model bundles written by the notebooks (the synthetic-corpus model of notebook 04)."""
PRETRAINED_DIR = REPO_ROOT / "models"
"""The pretrained real-data model bundles shipped in the repository (``voice``, ``face``, ``av``), and the default
output folder of the training command."""
SAMPLES_DIR = REPO_ROOT / "data" / "samples"
"""Real sample recordings shipped with the repository (openly licensed), for the first example and the demo."""
SAMPLE_CLIP = SAMPLES_DIR / "crema-d" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
"""The real clip the demos play when no camera or clip is given: CREMA-D actor 1001, anger (ODbL/DbCL)."""
BENCHMARKS_DIR = REPO_ROOT / "reports" / "benchmarks"
SPLITS_DIR = PACKAGE_DIR / "data" / "split_csvs"
"""The versioned speaker-independent split CSVs (package data, so an installed copy carries them)."""
SYNTHETIC_DIR = Path(os.environ.get("EMOTION_SYNTHETIC", REPO_ROOT / "data" / "synthetic"))
"""The generated default corpus; ``EMOTION_SYNTHETIC`` moves it (the smoke run and the notebook tests do)."""
CACHE_DIR = Path(os.environ.get("EMOTION_CACHE", REPO_ROOT / "data" / "cache"))
"""Per-clip feature cache; ``EMOTION_CACHE`` moves it."""


def shared_data_dir() -> Path:
    """The folder of real clips (RAVDESS, SAVEE, CREMA-D, CK+) next to the checkout.

    ``EMOTION_SHARED_DATA`` overrides the default ``../shared/data`` relative to the repository root.
    The folder may be absent: callers check ``.exists()`` and skip with a reason.
    """
    return Path(os.environ.get("EMOTION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def parameter_path(value: str | Path | None, default: Path) -> Path:
    """A path parameter (of a notebook or command): ``value`` when given, else the library's ``default``.

    An empty string counts as not given, so a notebook parameter ``cache_dir = ""`` means :data:`CACHE_DIR`
    (which ``EMOTION_CACHE`` moves).
    """
    return Path(value) if value else Path(default)


def corpus_dir(corpus: str, data_dir: str | Path | None = None) -> Path:
    """The folder of ``corpus``: ``data_dir`` when given, else :data:`SYNTHETIC_DIR` for the generated corpus
    or ``shared_data_dir() / corpus`` for a real one (``crema-d``, ``ravdess``, ``savee``)."""
    return parameter_path(data_dir, SYNTHETIC_DIR if corpus == "synthetic" else shared_data_dir() / corpus)
