"""Seeds, atomic file writes (and the removal of the temporary files a killed writer leaves) and the default number
of worker processes."""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and, when it is already imported, TensorFlow (with deterministic ops)."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import sys

    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file.

    The file gets the usual permissions (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


STALE_TEMPORARY_SECONDS = 300.0
"""Age after which a temporary file of :func:`atomic_write_bytes` belongs to a writer that died (a live writer
renames it within seconds)."""


def temporary_files(folder: Path | str) -> list[Path]:
    """The temporary files :func:`atomic_write_bytes` makes in ``folder`` (``.<name>.<random>.tmp``)."""
    folder = Path(folder)
    return sorted(path for path in folder.glob(".*.tmp") if path.is_file()) if folder.is_dir() else []


def remove_stale_temporaries(folder: Path | str, older_than: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
    """Delete the temporary files of :func:`atomic_write_bytes` in ``folder`` not modified for ``older_than``
    seconds (left by a killed writer; younger ones may belong to a writer still running); return them."""
    removed, now = [], time.time()
    for path in temporary_files(folder):
        try:
            if now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # renamed or removed by its writer meanwhile
            continue
    return removed


def default_workers() -> int:
    """Worker processes for parallel work: ``EMOTION_WORKERS`` when set (Binder sets 1: its 2 GB of memory holds one
    extraction worker), else every core.

    Raises:
        ValueError: ``EMOTION_WORKERS`` is not a whole number of at least 1.
    """
    value = os.environ.get("EMOTION_WORKERS", "")
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"EMOTION_WORKERS must be a whole number of at least 1, not {value!r}")
    return int(value)
