"""Atomic writes (whole files only, usual permissions, the old file kept when a write fails); worker count."""

from __future__ import annotations

import os

import pytest

from emotion_lib.utils import atomic_write_bytes, default_workers


def test_atomic_write_replaces_the_file_with_umask_permissions(tmp_path):
    path = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(path, b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "file.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_default_workers_follows_emotion_workers(monkeypatch):
    monkeypatch.delenv("EMOTION_WORKERS", raising=False)
    assert default_workers() == (os.cpu_count() or 1)
    monkeypatch.setenv("EMOTION_WORKERS", "1")
    assert default_workers() == 1
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("EMOTION_WORKERS", bad)
        with pytest.raises(ValueError, match="EMOTION_WORKERS"):
            default_workers()
