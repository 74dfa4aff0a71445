"""Per-clip feature cache: the extraction configuration and its key, extraction runs and their report, loading.

Layout: ``cache_dir/<corpus>/<config key>/<clip_id>.npz`` plus ``manifest.json`` (configuration, extractor
versions, the last run's report). The key hashes the configuration and the extractor versions, so a changed
setting never reads stale features. Each clip is written atomically (temporary file + rename) with a checksum of its
arrays (:mod:`emotion_lib.features.cache`): a killed run leaves no partial entry, a rerun skips the entries that
verify and extracts again the ones that do not (reported with their path), and loading never returns an entry that
does not verify. A failing clip is reported with its reason and never stops the run; Ctrl-C stops it cleanly
(:class:`ExtractionInterrupted`). The clips are run by :mod:`emotion_lib.features.runners` (this process, a process
pool or Dask).
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from emotion_lib.features.audio import LOADER_VERSION
from emotion_lib.features.cache import CacheEntryError, entry_problem, read_entry
from emotion_lib.features.extraction_report import ExtractionInterrupted, ExtractionReport
from emotion_lib.features.faces.registry import check_backend, check_options, face_backend_spec
from emotion_lib.features.runners import run_dask, run_pool, run_serial
from emotion_lib.features.smile import deferred_interrupt
from emotion_lib.paths import CACHE_DIR
from emotion_lib.utils import atomic_write_bytes, default_workers, remove_stale_temporaries

FORMAT_VERSION = 2
"""Bumped when the stored arrays change meaning or layout; part of the cache key (2: entries carry a checksum)."""


@cache
def package_version(name: str) -> str | None:
    """The installed version of a distribution, or of the distribution that provides the import name ``name``
    (``tensorflow`` is provided by ``tensorflow``, ``tensorflow-cpu`` or ``tensorflow[and-cuda]``); ``None`` when
    neither is installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    for distribution in sorted(metadata.packages_distributions().get(name.replace("-", "_"), ())):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


@dataclass(frozen=True)
class ExtractionConfig:
    """Everything that determines a clip's features. ``video_backend=None`` extracts audio only.

    ``backend_options`` are the face backend's own options (e.g. ``{"output": "features"}`` for ``fer``,
    ``{"weights": path}`` for ``facenet``; see :data:`~emotion_lib.features.faces.FACE_BACKENDS`), given as a
    mapping or as ``(name, value)`` pairs and stored as sorted pairs; an option the backend does not accept raises
    :class:`ValueError`. The detection settings ``detect_width`` and ``coarse_first`` are fields.
    """

    audio_feature_set: str = "eGeMAPSv02"
    audio_level: str = "lld"
    video_backend: str | None = "dlib"
    fps: float = 5.0
    detect_width: int = 320
    coarse_first: bool = True
    backend_options: tuple[tuple[str, object], ...] | Mapping[str, object] = ()

    def __post_init__(self) -> None:
        if not (isinstance(self.fps, numbers.Real) and 0 < self.fps < float("inf")):
            raise ValueError(f"fps must be a positive number of frames per second, got {self.fps!r}")
        width = self.detect_width
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(f"detect_width must be a positive number of pixels, got {self.detect_width!r}")
        options = dict(self.backend_options)
        if self.video_backend:
            check_options(self.video_backend, options, detection=False)
        elif options:
            raise ValueError(f"backend_options {options} given without a video_backend")
        paths_as_text = {name: os.fspath(v) if isinstance(v, os.PathLike) else v for name, v in options.items()}
        object.__setattr__(self, "backend_options", tuple(sorted(paths_as_text.items())))

    def backend_kwargs(self) -> dict:
        """Constructor options of the face backend: the detection settings and :attr:`backend_options`."""
        return {"detect_width": self.detect_width, "coarse_first": self.coarse_first, **dict(self.backend_options)}

    def versions(self) -> dict:
        """Installed versions of the packages whose models produce the features."""
        packages = ("opensmile",) + (face_backend_spec(self.video_backend).packages if self.video_backend else ())
        return {package: package_version(package) for package in packages}

    def key(self) -> str:
        """Short hash of the configuration, the extractor versions and the storage format."""
        return _config_key(self)

    def clip_path(self, cache_dir: Path | str, clip: dict) -> Path:
        """Where one clip's features are cached (``clip`` has ``corpus`` and ``clip_id``)."""
        return clip_dir(cache_dir, clip["corpus"], self) / f"{clip['clip_id']}.npz"


@cache
def _config_key(config: ExtractionConfig) -> str:
    options = {}
    if config.video_backend:
        spec = face_backend_spec(config.video_backend)
        options = spec.backend.key_options({**spec.defaults(), **dict(config.backend_options)})
    payload = json.dumps(
        {
            "config": {**asdict(config), "backend_options": options},
            "versions": config.versions(),
            "format": FORMAT_VERSION,
            "audio_loader": LOADER_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


class ClipFeatures(NamedTuple):
    """One clip's cached features: audio ``(Ta, Da)``, video ``(Tv, Dv)`` and its face mask ``(Tv,)``.

    A video without an audio track keeps its video: its audio has no frames (``Ta = 0``)."""

    audio: np.ndarray
    video: np.ndarray | None
    video_mask: np.ndarray | None


def clip_dir(cache_dir: Path | str, corpus: str, config: ExtractionConfig) -> Path:
    """The folder holding one corpus's clips for one configuration."""
    return Path(cache_dir) / str(corpus) / config.key()


def _clip_records(clips: pd.DataFrame | Iterable[dict]) -> list[dict]:
    records = clips.to_dict("records") if isinstance(clips, pd.DataFrame) else [dict(c) for c in clips]
    for record in records:
        for key in ("audio_path", "video_path"):
            value = record.get(key)
            record[key] = str(value) if isinstance(value, (str, Path)) and str(value) else None
    return records


def _write_manifest(folder: Path, config: ExtractionConfig, report: ExtractionReport | None) -> None:
    manifest = {
        "config_key": config.key(),
        "config": asdict(config),
        "versions": config.versions(),
        "format_version": FORMAT_VERSION,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "last_run": report.to_dict() if report else None,
    }
    atomic_write_bytes(folder / "manifest.json", json.dumps(manifest, indent=2).encode())


def extract_features(
    clips: pd.DataFrame | Iterable[dict],
    config: ExtractionConfig = ExtractionConfig(),
    cache_dir: Path | str = CACHE_DIR,
    workers: int | None = None,
    scheduler: str = "processes",
    dask_address: str | None = None,
    progress: bool = True,
) -> ExtractionReport:
    """Extract and cache the features of every clip not cached yet; return the :class:`ExtractionReport`.

    ``clips`` is a clip table (:data:`emotion_lib.data.corpora.CLIP_COLUMNS`). ``scheduler`` is ``'processes'``
    (a spawn process pool of ``workers``, by default :func:`~emotion_lib.utils.default_workers`; ``workers=1`` runs
    in this process) or ``'dask'`` (a LocalCluster, or the scheduler at ``dask_address``). A face backend that
    cannot run here raises :class:`~emotion_lib.features.faces.BackendUnavailable` before any work starts. A cached
    entry that does not verify is listed in ``report.corrupt``, deleted and extracted again.

    Raises:
        ExtractionInterrupted: Ctrl-C: no further clip starts, the workers are stopped, nothing partial is
            stored and the run is recorded in the manifest as interrupted.
    """
    if scheduler not in ("processes", "dask"):
        raise ValueError(f"scheduler must be 'processes' or 'dask', got {scheduler!r}")
    if config.video_backend:
        check_backend(config.video_backend, **config.backend_kwargs())
    started = time.perf_counter()
    cache_dir = Path(cache_dir)
    records = _clip_records(clips)
    report = ExtractionReport(cache_dir, config.key())
    folders = sorted({clip_dir(cache_dir, clip["corpus"], config) for clip in records})
    results = None
    try:
        todo = _prepare(records, config, folders, report)
        workers = max(1, min(workers or default_workers(), len(todo) or 1))
        if scheduler == "dask":
            results = run_dask(todo, config, str(cache_dir), workers, dask_address)
        elif workers == 1:
            results = run_serial(todo, config, str(cache_dir))
        else:
            results = run_pool(todo, config, str(cache_dir), workers)
        with tqdm(total=len(todo), unit="clip", desc="extracting features", disable=not progress) as bar:
            for result in results:
                report.add(result)
                bar.update(1)
                bar.set_postfix(failed=len(report.failed), refresh=False)
        report.finished = True
    except KeyboardInterrupt:
        report.interrupted = True
        with deferred_interrupt():  # a second Ctrl-C waits for the workers to stop and the manifest
            if results is not None:
                results.close()
            _finish_run(report, started, config, folders)
        raise ExtractionInterrupted(report) from None
    _finish_run(report, started, config, folders)
    return report


def _prepare(
    records: list[dict], config: ExtractionConfig, folders: list[Path], report: ExtractionReport
) -> list[dict]:
    """Remove stale temporary files, sort the clips into verified cached ones (``report.skipped``) and the ones to
    extract (absent, or corrupt: listed in ``report.corrupt`` and deleted), record the run as started."""
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        report.removed_temporaries += [str(path) for path in remove_stale_temporaries(folder)]
    todo = []
    for clip in records:
        path = config.clip_path(report.cache_dir, clip)
        problem = entry_problem(path) if path.exists() else None
        if problem == "":
            report.skipped.append(clip["clip_id"])
            continue
        if problem:
            report.corrupt.append((str(path), problem))
            with suppress(OSError):  # if it cannot go, storing the new entry fails and names the file
                path.unlink()
        todo.append(clip)
    for folder in folders:
        _write_manifest(folder, config, report)
    return todo


def _finish_run(report: ExtractionReport, started: float, config: ExtractionConfig, folders: list[Path]) -> None:
    report.seconds = time.perf_counter() - started
    for folder in folders:
        _write_manifest(folder, config, report)


def summarize(features: dict[str, ClipFeatures]) -> pd.DataFrame:
    """One row per clip: audio frames and dimension, video frames, dimension and fraction with a face."""
    rows = [
        {
            "clip_id": clip_id,
            "audio_frames": len(f.audio),
            "audio_dim": f.audio.shape[1],
            "video_frames": None if f.video is None else len(f.video),
            "video_dim": None if f.video is None else f.video.shape[1],
            "face_fraction": None if f.video_mask is None else float(f.video_mask.mean()) if len(f.video_mask) else 0.0,
        }
        for clip_id, f in features.items()
    ]
    return pd.DataFrame(rows)


def load_features(
    clips: pd.DataFrame | Iterable[dict],
    config: ExtractionConfig = ExtractionConfig(),
    cache_dir: Path | str = CACHE_DIR,
    missing: str = "raise",
) -> dict[str, ClipFeatures]:
    """Cached, verified features per clip id, in the order of ``clips``.

    ``missing='raise'`` raises :class:`FileNotFoundError` listing clips that are not cached (run
    :func:`extract_features` first), and :class:`~emotion_lib.features.cache.CacheEntryError` naming the cached
    files that do not verify (corrupt, truncated, empty or altered: :func:`extract_features` replaces them).
    ``missing='skip'`` leaves both out (e.g. clips that failed extraction) and warns about the corrupt files.
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    features, absent, corrupt = {}, [], []
    for clip in _clip_records(clips):
        path = config.clip_path(cache_dir, clip)
        if not path.exists():
            absent.append(clip["clip_id"])
            continue
        try:
            data = read_entry(path)
        except CacheEntryError as error:
            corrupt.append(error)
            continue
        features[clip["clip_id"]] = ClipFeatures(data["audio"], data.get("video"), data.get("video_mask"))
    if corrupt and missing == "raise":
        others = "; ".join(str(error) for error in corrupt[1:10]) + (" ..." if len(corrupt) > 10 else "")
        raise CacheEntryError(
            corrupt[0].path,
            f"{corrupt[0].reason}{f'; and {len(corrupt) - 1} more: {others}' if others else ''} "
            "(run extract_features again to replace the entries that do not verify)",
        )
    if corrupt:
        warnings.warn(
            f"skipped {len(corrupt)} cached entr{'y' if len(corrupt) == 1 else 'ies'} that did not verify (run "
            f"extract_features again to replace them): {'; '.join(str(error) for error in corrupt)}",
            stacklevel=2,
        )
    if absent and missing == "raise":
        raise FileNotFoundError(
            f"{len(absent)} clip(s) have no cached features under "
            f"{Path(cache_dir)} for configuration {config.key()}: {', '.join(absent[:10])}"
            f"{' ...' if len(absent) > 10 else ''} (run extract_features first)"
        )
    return features
