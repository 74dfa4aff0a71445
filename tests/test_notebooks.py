"""Every notebook runs end to end under papermill, in order, on a tiny synthetic corpus.

Outputs go to a temporary reports folder and feature cache (``EMOTION_REPORTS``, ``EMOTION_CACHE``), so the
test never touches the repository's ``reports/``. The notebooks share that folder, as in ``make reproduce``:
notebook 04 saves the model that 05 evaluates and 06 streams.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from emotion_lib.data.synthetic import generate_corpus
from emotion_lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0*.ipynb"))
TINY = dict(corpus="synthetic", subset=0, seed=0, epochs=1, quick=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    corpus = generate_corpus(root / "synthetic", seed=0, n_actors=6, clips_per_emotion=1, workers=2, progress=False)
    saved = {key: os.environ.get(key) for key in ("EMOTION_REPORTS", "EMOTION_CACHE")}
    os.environ["EMOTION_REPORTS"] = str(root / "reports")
    os.environ["EMOTION_CACHE"] = str(root / "cache")
    yield root, corpus
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_every_stage_has_a_notebook():
    stages = [path.name[:3] for path in NOTEBOOKS]
    assert stages == ["00_", "01_", "02_", "03_", "04_", "05_", "06_"], [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(notebook: Path, workspace):
    root, corpus = workspace
    source = nbformat.read(notebook, as_version=4)
    tagged = [cell for cell in source.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters'"
    code_lines = [
        line.lstrip() for cell in source.cells if cell.cell_type == "code" for line in cell.source.splitlines()
    ]
    assert not any(line.startswith(("def ", "class ")) for line in code_lines), (
        f"{notebook.name} defines logic: move it to emotion_lib"
    )
    output = root / "executed" / notebook.name
    output.parent.mkdir(exist_ok=True)
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=dict(TINY, data_dir=str(corpus), cache_dir=str(root / "cache")),
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    executed = nbformat.read(output, as_version=4)
    errors = [o for cell in executed.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert sum(cell.cell_type == "markdown" for cell in executed.cells) >= 3, f"{notebook.name} needs narration"
