"""Running the extraction of clips: one clip in a worker, and the serial, process-pool and Dask runners.

Each runner yields one :class:`ClipResult` per clip; a failing clip (even one that kills its worker process) is a
failed result naming its file, never an exception that stops the run. Worker processes are spawned and import
``emotion_lib`` (hence openSMILE) before anything can import TensorFlow.

Interrupts: pool workers ignore Ctrl-C (SIGINT is blocked while they start and ignored once they run), so only
the parent stops the run. When the parent is interrupted, or closes the runner early, the queued clips are
cancelled and the workers stopped; a clip is stored only whole (atomically), so an abandoned one is simply not
there. A worker whose parent dies exits by itself within :data:`PARENT_POLL_SECONDS`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import TYPE_CHECKING

import numpy as np

from emotion_lib.features.audio import SAMPLE_RATE, AudioFeatureExtractor, MediaWarning, NoAudioTrack, load_audio
from emotion_lib.features.cache import write_entry
from emotion_lib.features.events import emit
from emotion_lib.features.faces.registry import get_face_backend
from emotion_lib.features.smile import deferred_interrupt
from emotion_lib.features.video import embed_video

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
    """Extract one clip and store it atomically; any error becomes a failed :class:`ClipResult`.

    Emits the ``clip-start`` and ``clip-stored`` events of :mod:`emotion_lib.features.events`."""
    emit("clip-start", clip["clip_id"])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MediaWarning)
            arrays = extract_clip(clip, config)
        write_entry(config.clip_path(cache_dir, clip), arrays)
    except Exception as error:  # one bad clip must never stop the run
        return ClipResult(clip["clip_id"], "failed", _reason(error, clip))
    emit("clip-stored", clip["clip_id"])
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


PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that the process that started it is alive."""


def _exit_with_parent(parent: int) -> None:
    """Leave this worker process at once when its parent has died (it was adopted by another process)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _init_worker(parent: int) -> None:
    """Spawned workers: ignore Ctrl-C (the parent stops the run), exit with the parent ``parent``, openSMILE first
    (import-order trap), one math thread per process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while starting (_starting_workers)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True).start()
    import emotion_lib  # noqa: F401

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(variable, "1")


@contextmanager
def _starting_workers() -> Iterator[None]:
    """Block SIGINT in this thread while it starts worker processes: they inherit the blocked signal and unblock
    it only once they ignore it, so a Ctrl-C while they import cannot kill them. A Ctrl-C meanwhile reaches
    this process when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(os.getpid(),)
    )


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued clips and stop the workers now (a clip in progress is abandoned: it is stored whole or
    not at all)."""
    with deferred_interrupt():  # a second Ctrl-C waits until the workers are gone
        processes = list((pool._processes or {}).values())  # the executor has no public way to stop its workers
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


def run_serial(todo: list[dict], config: ExtractionConfig, cache_dir: str) -> Iterator[ClipResult]:
    """Every clip in this process, one after the other."""
    for clip in todo:
        yield process_clip(clip, config, cache_dir)


def run_pool(todo: list[dict], config: ExtractionConfig, cache_dir: str, workers: int) -> Iterator[ClipResult]:
    """Spawned process pool over clips. If a worker dies (segfault, out-of-memory kill), the clips left
    unfinished go to a fresh pool; when a pool dies before finishing anything, its first clip is run alone,
    so a clip that kills its process is named as failed and every other clip still finishes.

    On Ctrl-C in this process, or when the caller closes the iterator, no further clip starts and the workers
    are stopped before the exception goes on."""
    while todo:
        unfinished = []
        with closing(_pool_results(todo, config, cache_dir, workers)) as results:
            for clip, result in results:
                if result is None:
                    unfinished.append(clip)
                else:
                    yield result
        if len(unfinished) == len(todo):
            suspect, unfinished = unfinished[0], unfinished[1:]
            with closing(_pool_results([suspect], config, cache_dir, 1)) as results:
                ((_, result),) = results
            yield result or ClipResult(
                suspect["clip_id"],
                "failed",
                f"{suspect['audio_path']}: the worker process crashed (segfault or killed) while extracting this clip",
            )
        todo = unfinished


def _pool_results(
    todo: list[dict], config: ExtractionConfig, cache_dir: str, workers: int
) -> Iterator[tuple[dict, ClipResult | None]]:
    """``(clip, result)`` per clip from one pool, as they finish; ``None`` for a clip lost with a dead worker."""
    pool = _new_pool(workers)
    try:
        with _starting_workers():
            futures = {pool.submit(process_clip, clip, config, cache_dir): clip for clip in todo}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                result = None
            yield futures[future], result
    except BaseException:  # Ctrl-C, or the caller stopped iterating: start nothing more
        _stop(pool)
        raise
    pool.shutdown(wait=True)


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
