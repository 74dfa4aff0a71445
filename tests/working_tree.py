"""Copy this checkout's working tree (committed or not, without ignored leftovers) for tests that build from it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from emotion_lib.paths import REPO_ROOT


def copy_working_tree(destination: Path) -> None:
    """Copy every file git tracks or would track (``--others --exclude-standard``) to ``destination``."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in names)):
        if (REPO_ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, destination / name)
