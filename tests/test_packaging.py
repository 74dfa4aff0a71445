"""``pip install .`` (not editable) carries what the library reads at run time: the wheel holds the split CSVs, and
the installed package reads a split outside any checkout. Builds a wheel (pip fetches the build backend from the
package registry)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from working_tree import copy_working_tree

from emotion_lib.paths import PACKAGE_DIR, SPLITS_DIR


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("packaging")
    copy_working_tree(base / "source")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base / "dist"), str(base / "source")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = (base / "dist").glob("emotion_lib-*.whl")
    return built


def test_the_split_csvs_live_in_the_package():
    assert SPLITS_DIR.is_relative_to(PACKAGE_DIR)
    assert sorted(SPLITS_DIR.glob("*.csv")), f"no split CSVs in {SPLITS_DIR}"


@pytest.mark.slow
def test_the_wheel_carries_every_split_csv(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"emotion_lib/{p.relative_to(PACKAGE_DIR).as_posix()}" for p in SPLITS_DIR.glob("*.csv")}
    assert expected and expected <= names, sorted(expected - names)


@pytest.mark.slow
def test_the_installed_package_reads_splits_outside_a_checkout(wheel, tmp_path):
    target, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    script = (
        "import emotion_lib, emotion_lib.paths as paths\n"
        "from emotion_lib.data.splits import read_folds\n"
        "print(emotion_lib.__file__)\n"
        "print(paths.REPO_ROOT)\n"
        "print(len(read_folds('ravdess')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    for name in ("EMOTION_REPORTS", "EMOTION_CACHE"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    package_file, repo_root, n_actors = result.stdout.split()
    assert Path(package_file).is_relative_to(target)  # the installed copy, not this checkout
    assert Path(repo_root) == work  # no checkout around it: data/ and reports/ go to the working folder
    assert int(n_actors) == 24  # RAVDESS actors in the versioned folds
