"""Trainings side by side: spawned processes, each giving TensorFlow a pinned number of threads.

The thread count changes float sums (how a reduction is split), and with it the trained weights. Pinned, a
training's outcome does not depend on the machine's core count or on how many trainings run side by side (the
processor's instruction set still can: README, "Reruns and their tolerance"); it also makes the processes share
the cores instead of each trying to use all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

TRAINING_THREADS = 1
"""TensorFlow's intra- and inter-op threads in each training process (part of what a training's numbers depend on)."""


def pin_tensorflow_threads(threads: int = TRAINING_THREADS) -> None:
    """Give TensorFlow ``threads`` intra- and inter-op threads (call before TensorFlow runs an op)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def run_in_processes(
    function: Callable,
    calls: Sequence[tuple],
    workers: int,
    initializer: Callable = pin_tensorflow_threads,
    initargs: tuple = (),
) -> Iterator[tuple[int, Any]]:
    """``function(*call)`` for every call in ``workers`` spawned processes; yield ``(call index, result)`` as calls
    finish. ``initializer(*initargs)`` runs once per process: it must pin the threads
    (:func:`pin_tensorflow_threads`) and may keep data the calls share (sent once per process, not per call)."""
    if not calls:
        return
    with ProcessPoolExecutor(min(workers, len(calls)), get_context("spawn"), initializer, initargs) as pool:
        futures = {pool.submit(function, *call): i for i, call in enumerate(calls)}
        for future in as_completed(futures):
            yield futures[future], future.result()
