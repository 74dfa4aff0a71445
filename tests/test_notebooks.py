"""The notebooks, tested as committed: ``reports/notebooks/`` holds every notebook executed by the smoke run
(``make reproduce QUICK=1``) and each is executed again here under nbval (``pytest --nbval-lax``).

nbval runs every cell and fails on an error; the cells tagged ``nbval-check-output`` (corpus tables, class counts,
feature dimensions, model summaries: outputs that depend only on the corpus and the code) must print what the
committed copy shows. Figures, timings and trained numbers are not compared. The committed copies must hold the
current code of ``notebooks/`` (else ``make reproduce QUICK=1`` is due), so the run tests the notebooks themselves.

The run repeats the smoke run's settings (``EMOTION_QUICK=1``, the 36-clip corpus of the ``data-quick`` target)
with a temporary corpus, feature cache and reports folder (``EMOTION_SYNTHETIC``, ``EMOTION_CACHE``,
``EMOTION_REPORTS``), so it never touches the repository's ``data/`` or ``reports/``. The feature cache is the
session's ``real_feature_cache`` (``tests/conftest.py``), which the end-to-end test fills with the real clips'
features first. The notebooks share that
folder, as in ``make reproduce``: notebook 04 saves the model that 05 evaluates and 06 streams.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from emotion_lib.data.synthetic import generate_corpus
from emotion_lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0*.ipynb"))
EXECUTED = REPO_ROOT / "reports" / "notebooks"
SMOKE_CORPUS = dict(seed=0, n_actors=6, clips_per_emotion=1)
"""The smoke run's corpus: the Makefile's ``data-quick`` target generates the same."""
CHECK_TAG = "nbval-check-output"
INJECTED_TAG = "injected-parameters"
MAX_TOTAL_BYTES = 3_000_000
"""The committed executed notebooks stay light (a few small figures each)."""

IDS = [path.stem for path in NOTEBOOKS]


def _code_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, list[str]]]:
    """``(source, tags)`` of every code cell, without the cell papermill injects for ``-p`` parameters."""
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return [
        (cell.source, sorted(cell.metadata.get("tags", [])))
        for cell in cells
        if INJECTED_TAG not in cell.metadata.get("tags", [])
    ]


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory, real_feature_cache) -> dict[str, str]:
    """The environment of the smoke run, with a freshly generated corpus in a temporary folder and the session's
    real-clip feature cache (notebook 05's smoke run on the real clips reads what the end-to-end test extracted)."""
    root = tmp_path_factory.mktemp("smoke")
    corpus = generate_corpus(root / "synthetic", **SMOKE_CORPUS, workers=2, progress=False)
    return {
        **os.environ,
        "EMOTION_QUICK": "1",
        "EMOTION_SYNTHETIC": str(corpus),
        "EMOTION_CACHE": str(real_feature_cache),
        "EMOTION_REPORTS": str(root / "reports"),
    }


def test_every_stage_has_a_notebook():
    stages = [path.name[:3] for path in NOTEBOOKS]
    assert stages == ["00_", "01_", "02_", "03_", "04_", "05_", "06_"], [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_notebook_is_a_narrated_thin_driver(notebook: Path):
    source = nbformat.read(notebook, as_version=4)
    tagged = [cell for cell in source.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters'"
    code_lines = [line.lstrip() for code, _ in _code_cells(source) for line in code.splitlines()]
    assert not any(line.startswith(("def ", "class ")) for line in code_lines), (
        f"{notebook.name} defines logic: move it to emotion_lib"
    )
    assert sum(cell.cell_type == "markdown" for cell in source.cells) >= 3, f"{notebook.name} needs narration"
    assert not any(cell.get("outputs") for cell in source.cells if cell.cell_type == "code"), (
        f"{notebook.name} has saved outputs: notebooks/ holds the code, reports/notebooks/ the executed copies"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_committed_copy_is_the_current_notebook_run_without_errors(notebook: Path):
    copy = EXECUTED / notebook.name
    assert copy.exists(), f"{copy} is missing: run make reproduce QUICK=1"
    executed = nbformat.read(copy, as_version=4)
    assert _code_cells(executed) == _code_cells(nbformat.read(notebook, as_version=4)), (
        f"{copy} was executed from an older {notebook}: run make reproduce QUICK=1"
    )
    errors = [o for cell in executed.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{copy} holds an error output"
    checked = [cell for cell in executed.cells if CHECK_TAG in cell.metadata.get("tags", [])]
    assert all(cell.get("outputs") for cell in checked), f"{copy}: a cell tagged {CHECK_TAG} has no saved output"


def test_committed_copies_are_light():
    total = sum(path.stat().st_size for path in EXECUTED.glob("*.ipynb"))
    assert total <= MAX_TOTAL_BYTES, f"reports/notebooks/ holds {total / 1e6:.1f} MB of notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_notebook_runs_under_nbval(notebook: Path, smoke_env: dict[str, str]):
    copy = EXECUTED / notebook.name
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider"]
    run = subprocess.run([*command, "-q", str(copy)], cwd=REPO_ROOT, env=smoke_env, capture_output=True, text=True)
    assert run.returncode == 0, f"nbval failed on {copy.name}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
