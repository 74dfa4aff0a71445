"""Verified cache entries: one clip's arrays in an ``.npz`` that carries a checksum of its arrays and their shapes.

An entry is written atomically (:func:`~emotion_lib.utils.atomic_write_bytes`) with one extra array,
:data:`CHECKSUM_KEY`: a JSON text holding each array's dtype and shape and a SHA-256 over the names, dtypes, shapes
and bytes. :func:`read_entry` refuses anything else (an empty, truncated or corrupt file, an entry without a
checksum, an array added, missing or changed, a video whose mask does not match it) with a
:class:`CacheEntryError` naming the file, so a bad entry is never taken for features.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from emotion_lib.utils import atomic_write_bytes

CHECKSUM_KEY = "__checksum__"
"""The array of an entry that holds its checksum and shape facts (a JSON text)."""
VIDEO_ARRAYS = ("video", "video_mask", "video_times")
"""Arrays of an entry with video, one row per sampled frame."""


class CacheEntryError(ValueError):
    """A cached entry is unreadable, has no checksum or does not match it; the message names the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _facts(arrays: Mapping[str, np.ndarray]) -> dict:
    return {name: {"dtype": array.dtype.str, "shape": list(array.shape)} for name, array in sorted(arrays.items())}


def entry_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The ``.npz`` bytes of an entry: ``arrays`` plus their checksum and shape facts under :data:`CHECKSUM_KEY`."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    if CHECKSUM_KEY in arrays:
        raise ValueError(f"{CHECKSUM_KEY!r} is reserved for the entry's checksum")
    record = json.dumps({"sha256": _digest(arrays), "arrays": _facts(arrays)}, sort_keys=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{CHECKSUM_KEY: np.array(record)})
    return buffer.getvalue()


def write_entry(path: Path | str, arrays: Mapping[str, np.ndarray]) -> None:
    """Store ``arrays`` at ``path`` atomically, with their checksum (:func:`entry_bytes`)."""
    atomic_write_bytes(path, entry_bytes(arrays))


def _load(path: Path) -> tuple[dict[str, np.ndarray], str | None]:
    """Every array of the ``.npz`` at ``path`` and its checksum record; an unreadable file raises."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        kind = "empty file (0 bytes)" if path.is_file() and path.stat().st_size == 0 else "unreadable"
        raise CacheEntryError(path, f"{kind} ({type(error).__name__}: {error})") from error
    record = arrays.pop(CHECKSUM_KEY, None)
    return arrays, None if record is None or record.shape != () else str(record)


def _mismatch(arrays: dict[str, np.ndarray], record: str) -> str:
    """What is wrong with ``arrays`` against their checksum ``record`` ('' when nothing is)."""
    try:
        expected = json.loads(record)
        facts, checksum = expected["arrays"], expected["sha256"]
    except (ValueError, KeyError, TypeError):
        return "its checksum record is not readable"
    if set(facts) != set(arrays):
        extra, missing = sorted(set(arrays) - set(facts)), sorted(set(facts) - set(arrays))
        return f"its arrays do not match its checksum (extra: {extra or 'none'}, missing: {missing or 'none'})"
    actual = _facts(arrays)
    changed = [name for name in facts if facts[name] != actual[name]]
    if changed:
        return f"dtype or shape of {', '.join(changed)} differ from its checksum record"
    if _digest(arrays) != checksum:
        return "checksum mismatch (the array contents changed)"
    return ""


def _layout_problem(arrays: dict[str, np.ndarray]) -> str:
    """A structural problem of a clip's arrays ('' when none): audio rows by features (none only when the entry
    says why: ``audio_missing``, a video without an audio track), one video row per frame."""
    audio = arrays.get("audio")
    if audio is None or audio.ndim != 2 or not (len(audio) or "audio_missing" in arrays):
        return "no audio feature rows"
    present = [name for name in VIDEO_ARRAYS if name in arrays]
    if present and (len(present) != len(VIDEO_ARRAYS) or len({len(arrays[name]) for name in present}) != 1):
        return "video, video_mask and video_times do not have one row per frame"
    return ""


def read_entry(path: Path | str) -> dict[str, np.ndarray]:
    """The verified arrays of the entry at ``path`` (without :data:`CHECKSUM_KEY`).

    Raises:
        CacheEntryError: the file is empty, truncated, unreadable, has no checksum, or its arrays do not match
            their checksum and shape facts.
    """
    path = Path(path)
    arrays, record = _load(path)
    if record is None:
        raise CacheEntryError(path, "no checksum (written by an older version, or not by emotion_lib)")
    problem = _mismatch(arrays, record) or _layout_problem(arrays)
    if problem:
        raise CacheEntryError(path, problem)
    return arrays


def entry_problem(path: Path | str) -> str:
    """Why the entry at ``path`` cannot be used ('' when it reads and verifies)."""
    try:
        read_entry(path)
    except CacheEntryError as error:
        return error.reason
    return ""
