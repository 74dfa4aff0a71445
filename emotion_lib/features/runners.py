"""Running the extraction of clips: one clip in a worker, and the serial, process-pool and Dask runners.

Each runner yields one :class:`ClipResult` per clip; a failing clip (even one that kills its worker process) is a
failed result naming its file, never an exception that stops the run. Worker processes are spawned and import
``emotion_lib`` (hence openSMILE) before anything can import TensorFlow.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import TYPE_CHECKING

import numpy as np

from emotion_lib.features.audio import SAMPLE_RATE, AudioFeatureExtractor, MediaWarning, NoAudioTrack, load_audio
from emotion_lib.features.faces.registry import get_face_backend
from emotion_lib.features.video import embed_video
from emotion_lib.utils import atomic_write_bytes

if TYPE_CHECKING:
    from emotion_lib.features.store import ExtractionConfig


@dataclass
class ClipResult:
    """The outcome of one clip in a worker."""

    clip_id: str
    status: str  # "done" or "failed"
    reason: str = ""
    audio_seconds: float = 0.0
    video_frames: int = 0
    faces: int = 0
    warnings: list[str] = field(default_factory=list)
    """The :class:`~emotion_lib.features.audio.MediaWarning` messages of the clip (truncated media, clipping)."""


_EXTRACTORS: dict[str, tuple] = {}
"""Per-process extractors (openSMILE configurations, face models), built once per configuration."""


def _extractors(config: ExtractionConfig) -> tuple:
    key = config.key()
    if key not in _EXTRACTORS:
        audio = AudioFeatureExtractor(config.audio_feature_set, config.audio_level)
        video = get_face_backend(config.video_backend, **config.backend_kwargs()) if config.video_backend else None
        _EXTRACTORS[key] = (audio, video)
    return _EXTRACTORS[key]


def extract_clip(clip: dict, config: ExtractionConfig) -> dict[str, np.ndarray]:
    """Compute one clip's arrays: ``audio``, ``audio_seconds`` and, with a video backend and a video file, ``video``,
    ``video_mask`` and ``video_times``.

    A video without an audio track keeps its video arrays: ``audio`` has no frames (shape ``(0, D)``),
    ``audio_missing`` holds the reason and a :class:`~emotion_lib.features.audio.MediaWarning` says so.
    """
    audio_extractor, backend = _extractors(config)
    video_path = clip.get("video_path")
    with_video = backend is not None and isinstance(video_path, str) and bool(video_path)
    try:
        signal = load_audio(clip["audio_path"])
    except NoAudioTrack as error:
        if not with_video:
            raise
        warnings.warn(f"{error}; audio features missing, video features kept", MediaWarning, stacklevel=2)
        arrays = {
            "audio": np.zeros((0, audio_extractor.dim), np.float32),
            "audio_seconds": np.float64(0.0),
            "audio_missing": np.str_(str(error)),
        }
    else:
        arrays = {
            "audio": audio_extractor.extract(signal, name=clip["audio_path"]),
            "audio_seconds": np.float64(len(signal) / SAMPLE_RATE),
        }
    if with_video:
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MediaWarning)
            arrays = extract_clip(clip, config)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(config.clip_path(cache_dir, clip), buffer.getvalue())
    except Exception as error:  # one bad clip must never stop the run
        return ClipResult(clip["clip_id"], "failed", _reason(error, clip))
    for warning in caught:  # other warnings go on to the usual handlers
        if not issubclass(warning.category, MediaWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    mask = arrays.get("video_mask")
    return ClipResult(
        clip["clip_id"],
        "done",
        audio_seconds=float(arrays["audio_seconds"]),
        video_frames=0 if mask is None else len(mask),
        faces=0 if mask is None else int(mask.sum()),
        warnings=[str(w.message) for w in caught if issubclass(w.category, MediaWarning)],
    )


def _init_worker() -> None:
    """Spawned workers: openSMILE first (import-order trap), one math thread per process."""
    import emotion_lib  # noqa: F401

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(variable, "1")


def run_serial(todo: list[dict], config: ExtractionConfig, cache_dir: str) -> Iterator[ClipResult]:
    """Every clip in this process, one after the other."""
    for clip in todo:
        yield process_clip(clip, config, cache_dir)


def run_pool(todo: list[dict], config: ExtractionConfig, cache_dir: str, workers: int) -> Iterator[ClipResult]:
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


def run_dask(
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
