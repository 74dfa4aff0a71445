"""Per-clip feature cache, parallel extraction (process pool or Dask) and the extraction report.

Layout: ``cache_dir/<corpus>/<config key>/<clip_id>.npz`` plus ``manifest.json`` (configuration, extractor
versions, the last run's report). The key hashes the configuration and the extractor versions, so a changed
setting never reads stale features. Each clip is written atomically (temporary file + rename): a killed run
leaves no partial entry, and a rerun skips finished clips. A failing clip is reported with its reason and never
stops the run. Worker processes are spawned and import ``emotion_lib`` (hence openSMILE) before anything can
import TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from emotion_lib.features.audio import LOADER_VERSION, SAMPLE_RATE, AudioFeatureExtractor, load_audio
from emotion_lib.features.video import check_backend, embed_video, get_face_backend
from emotion_lib.paths import CACHE_DIR
from emotion_lib.utils import atomic_write_bytes

FORMAT_VERSION = 1
"""Bumped when the stored arrays change meaning; part of the cache key."""
BACKEND_PACKAGES = {
    "dlib": ("dlib-bin", "face-recognition-models", "tensorflow"),
    "fer": ("fer", "keras", "dlib-bin"),
    "facenet": ("facenet-pytorch", "torch", "dlib-bin"),
}


@dataclass(frozen=True)
class ExtractionConfig:
    """Everything that determines a clip's features. ``video_backend=None`` extracts audio only."""

    audio_feature_set: str = "eGeMAPSv02"
    audio_level: str = "lld"
    video_backend: str | None = "dlib"
    fps: float = 5.0
    detect_width: int = 320
    coarse_first: bool = True
    fer_output: str = "probabilities"
    facenet_weights: str | None = None

    def backend_options(self) -> dict:
        """Constructor options of the face backend."""
        options = {"detect_width": self.detect_width, "coarse_first": self.coarse_first}
        if self.video_backend == "fer":
            options["output"] = self.fer_output
        if self.video_backend == "facenet":
            options["weights"] = self.facenet_weights
        return options

    def versions(self) -> dict:
        """Installed versions of the packages whose models produce the features."""
        packages = ("opensmile",) + BACKEND_PACKAGES.get(self.video_backend or "", ())
        found = {}
        for package in packages:
            try:
                found[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                found[package] = None
        return found

    def key(self) -> str:
        """Short hash of the configuration, the extractor versions and the storage format."""
        return _config_key(self)


@cache
def _config_key(config: ExtractionConfig) -> str:
    weights = Path(config.facenet_weights).name if config.facenet_weights else None
    payload = json.dumps(
        {
            "config": {**asdict(config), "facenet_weights": weights},
            "versions": config.versions(),
            "format": FORMAT_VERSION,
            "audio_loader": LOADER_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


class ClipFeatures(NamedTuple):
    """One clip's cached features: audio ``(Ta, Da)``, video ``(Tv, Dv)`` and its face mask ``(Tv,)``."""

    audio: np.ndarray
    video: np.ndarray | None
    video_mask: np.ndarray | None


@dataclass
class ClipResult:
    """The outcome of one clip in a worker."""

    clip_id: str
    status: str  # "done" or "failed"
    reason: str = ""
    audio_seconds: float = 0.0
    video_frames: int = 0
    faces: int = 0


@dataclass
class ExtractionReport:
    """What an extraction run did: clips done, skipped (already cached), failed (with reasons), faceless."""

    cache_dir: Path
    config_key: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0
    video_frames: int = 0

    def add(self, result: ClipResult) -> None:
        """Record one worker result."""
        if result.status == "done":
            self.done.append(result.clip_id)
            self.audio_seconds += result.audio_seconds
            self.video_frames += result.video_frames
            if result.video_frames and not result.faces:
                self.no_face.append(result.clip_id)
        else:
            self.failed.append((result.clip_id, result.reason))

    def to_dict(self) -> dict:
        return {
            "cache_dir": str(self.cache_dir),
            "config_key": self.config_key,
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": [list(item) for item in self.failed],
            "no_face": self.no_face,
            "seconds": round(self.seconds, 3),
            "audio_seconds": round(self.audio_seconds, 3),
            "video_frames": self.video_frames,
        }

    def __str__(self) -> str:
        rate = len(self.done) / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"extraction into {self.cache_dir}: {len(self.done)} done, {len(self.skipped)} skipped (cached), "
            f"{len(self.failed)} failed in {self.seconds:.1f} s ({rate:.2f} clips/s)"
        ]
        if self.no_face:
            lines.append(
                f"  {len(self.no_face)} clip(s) without any detected face (video fully masked): "
                + ", ".join(self.no_face[:10])
                + (" ..." if len(self.no_face) > 10 else "")
            )
        lines.extend(f"  FAILED {clip_id}: {reason}" for clip_id, reason in self.failed)
        return "\n".join(lines)


def clip_dir(cache_dir: Path | str, corpus: str, config: ExtractionConfig) -> Path:
    """The folder holding one corpus's clips for one configuration."""
    return Path(cache_dir) / str(corpus) / config.key()


def _clip_path(cache_dir: Path | str, clip: dict, config: ExtractionConfig) -> Path:
    return clip_dir(cache_dir, clip["corpus"], config) / f"{clip['clip_id']}.npz"


_EXTRACTORS: dict[str, tuple] = {}
"""Per-process extractors (openSMILE configurations, face models), built once per configuration."""


def _extractors(config: ExtractionConfig) -> tuple:
    key = config.key()
    if key not in _EXTRACTORS:
        audio = AudioFeatureExtractor(config.audio_feature_set, config.audio_level)
        video = get_face_backend(config.video_backend, **config.backend_options()) if config.video_backend else None
        _EXTRACTORS[key] = (audio, video)
    return _EXTRACTORS[key]


def extract_clip(clip: dict, config: ExtractionConfig) -> dict[str, np.ndarray]:
    """Compute one clip's arrays: ``audio``, ``audio_seconds`` and, with a video backend and a video file, ``video``,
    ``video_mask`` and ``video_times``."""
    audio_extractor, backend = _extractors(config)
    signal = load_audio(clip["audio_path"])
    arrays = {
        "audio": audio_extractor.extract(signal, name=clip["audio_path"]),
        "audio_seconds": np.float64(len(signal) / SAMPLE_RATE),
    }
    video_path = clip.get("video_path")
    if backend is not None and isinstance(video_path, str) and video_path:
        video, mask, times = embed_video(video_path, backend, config.fps)
        arrays.update(video=video, video_mask=mask, video_times=times)
    return arrays


def _reason(error: Exception, clip: dict) -> str:
    """An error message that names the clip's file."""
    message = f"{type(error).__name__}: {error}"
    paths = [str(clip.get(key)) for key in ("audio_path", "video_path") if clip.get(key)]
    return message if any(path in message for path in paths) else f"{' / '.join(paths)}: {message}"


def process_clip(clip: dict, config: ExtractionConfig, cache_dir: str) -> ClipResult:
    """Extract one clip and store it atomically; any error becomes a failed :class:`ClipResult`."""
    try:
        arrays = extract_clip(clip, config)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(_clip_path(cache_dir, clip, config), buffer.getvalue())
    except Exception as error:  # one bad clip must never stop the run
        return ClipResult(clip["clip_id"], "failed", _reason(error, clip))
    mask = arrays.get("video_mask")
    return ClipResult(
        clip["clip_id"],
        "done",
        audio_seconds=float(arrays["audio_seconds"]),
        video_frames=0 if mask is None else len(mask),
        faces=0 if mask is None else int(mask.sum()),
    )


def _init_worker() -> None:
    """Spawned workers: openSMILE first (import-order trap), one math thread per process."""
    import emotion_lib  # noqa: F401

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(variable, "1")


def _run_serial(todo: list[dict], config: ExtractionConfig, cache_dir: str) -> Iterator[ClipResult]:
    for clip in todo:
        yield process_clip(clip, config, cache_dir)


def _run_pool(todo: list[dict], config: ExtractionConfig, cache_dir: str, workers: int) -> Iterator[ClipResult]:
    """Spawned process pool over clips. If a worker dies (segfault, out-of-memory kill), the clips left
    unfinished go to a fresh pool; when a pool dies before finishing anything, its first clip is run alone,
    so a clip that kills its process is named as failed and every other clip still finishes."""
    while todo:
        unfinished = []
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = {pool.submit(process_clip, clip, config, cache_dir): clip for clip in todo}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:
                    unfinished.append(futures[future])
        if len(unfinished) == len(todo):
            suspect, unfinished = unfinished[0], unfinished[1:]
            with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
                try:
                    yield pool.submit(process_clip, suspect, config, cache_dir).result()
                except BrokenProcessPool:
                    yield ClipResult(
                        suspect["clip_id"],
                        "failed",
                        f"{suspect['audio_path']}: the worker process "
                        "crashed (segfault or killed) while extracting this clip",
                    )
        todo = unfinished


def _run_dask(
    todo: list[dict], config: ExtractionConfig, cache_dir: str, workers: int, address: str | None
) -> Iterator[ClipResult]:
    """The same work on a Dask cluster: a LocalCluster of ``workers`` processes, or the scheduler at
    ``address`` (its workers must see ``cache_dir`` and the clip files at the same paths)."""
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    cluster = (
        None
        if address
        else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    )
    try:
        with Client(address or cluster) as client:
            futures = client.map(process_clip, todo, config=config, cache_dir=cache_dir, pure=False)
            clip_of = {future.key: clip for future, clip in zip(futures, todo)}
            for future in dask_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # a killed worker surfaces here as KilledWorker
                    clip = clip_of[future.key]
                    yield ClipResult(clip["clip_id"], "failed", _reason(error, clip))
    finally:
        if cluster is not None:
            cluster.close()


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

    ``clips`` is a clip table (:data:`emotion_lib.corpora.CLIP_COLUMNS`). ``scheduler`` is ``'processes'``
    (a spawn process pool of ``workers``, default all cores; ``workers=1`` runs in this process) or
    ``'dask'`` (a LocalCluster, or the scheduler at ``dask_address``). A face backend that cannot run here
    raises :class:`~emotion_lib.features.video.BackendUnavailable` before any work starts.
    """
    if scheduler not in ("processes", "dask"):
        raise ValueError(f"scheduler must be 'processes' or 'dask', got {scheduler!r}")
    if config.video_backend:
        check_backend(config.video_backend, **config.backend_options())
    started = time.perf_counter()
    cache_dir = Path(cache_dir)
    records = _clip_records(clips)
    report = ExtractionReport(cache_dir, config.key())
    todo = []
    for clip in records:
        (report.skipped if _clip_path(cache_dir, clip, config).exists() else todo).append(clip)
    report.skipped = [clip["clip_id"] for clip in report.skipped]
    folders = sorted({clip_dir(cache_dir, clip["corpus"], config) for clip in records})
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        _write_manifest(folder, config, None)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if scheduler == "dask":
        results = _run_dask(todo, config, str(cache_dir), workers, dask_address)
    elif workers == 1:
        results = _run_serial(todo, config, str(cache_dir))
    else:
        results = _run_pool(todo, config, str(cache_dir), workers)
    with tqdm(total=len(todo), unit="clip", desc="extracting features", disable=not progress) as bar:
        for result in results:
            report.add(result)
            bar.update(1)
            bar.set_postfix(failed=len(report.failed), refresh=False)
    report.seconds = time.perf_counter() - started
    for folder in folders:
        _write_manifest(folder, config, report)
    return report


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
    """Cached features per clip id, in the order of ``clips``.

    ``missing='raise'`` raises :class:`FileNotFoundError` listing clips that are not cached (run
    :func:`extract_features` first); ``missing='skip'`` leaves them out (e.g. clips that failed extraction).
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    features, absent = {}, []
    for clip in _clip_records(clips):
        path = _clip_path(cache_dir, clip, config)
        if not path.exists():
            absent.append(clip["clip_id"])
            continue
        with np.load(path) as data:
            video, mask = data.get("video"), data.get("video_mask")
            features[clip["clip_id"]] = ClipFeatures(data["audio"], video, mask)
    if absent and missing == "raise":
        raise FileNotFoundError(
            f"{len(absent)} clip(s) have no cached features under "
            f"{Path(cache_dir)} for configuration {config.key()}: {', '.join(absent[:10])}"
            f"{' ...' if len(absent) > 10 else ''} (run extract_features first)"
        )
    return features
