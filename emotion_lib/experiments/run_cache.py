"""Training runs of the ablations: trained once, in one or several processes, and reused while nothing changed.

A run is a model configuration (with its seed) trained on the ``train`` side of a split (early stopping on
``validation``) and scored once on ``test``. Its outcome (test metrics, epochs) is stored under
``<out_dir>/results/<key>.json``, where the key hashes everything the outcome depends on: the configuration and
seed, the content of the three splits (names, labels, every feature array), the source of the whole library and
the versions of TensorFlow, Keras and NumPy. A rerun with an equal key reads the stored outcome instead of training
again; any change to the data, the code or the settings trains anew.

Every run trains in a spawned process that gives TensorFlow one thread (:mod:`emotion_lib.training.processes`):
a run's outcome does not depend on the machine's core count or on how many runs train side by side, and the stored
outcome is what training again would give (seeded, TensorFlow's op determinism).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.labels import EMOTIONS
from emotion_lib.utils import atomic_write_bytes, default_workers

LOG = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def neural_test_metrics(model, data) -> dict:
    """Metrics of a trained model on a :class:`~emotion_lib.sequences.SequenceData` (class names as labels)."""
    from emotion_lib.training.trainer import predict_data  # TensorFlow only when a model is tested

    predicted = predict_data(model, data).argmax(axis=1)
    names = np.asarray(EMOTIONS)
    return classification_metrics(names[data.labels], names[predicted], EMOTIONS)


@cache
def code_fingerprint() -> str:
    """A hash of every source file of the library and of the numerical packages' versions."""
    from emotion_lib.features.store import package_version

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        digest.update(f"{path.relative_to(root)}\0".encode() + path.read_bytes() + b"\0")
    for package in ("tensorflow", "keras", "numpy"):
        digest.update(f"{package}={package_version(package)}\0".encode())
    return digest.hexdigest()


def data_fingerprint(splits: dict) -> str:
    """A hash of the content of the ``train``, ``validation`` and ``test`` sides: names, labels and arrays."""
    digest = hashlib.sha256()
    for side in SPLITS:
        data = splits[side]
        digest.update(f"{side}\0{len(data)}\0".encode() + np.asarray(data.labels, np.int64).tobytes())
        for name, *arrays in zip(data.names, data.audio, data.video, data.video_masks):
            digest.update(f"{name}\0".encode())
            for array in arrays:
                if array is None:
                    digest.update(b"none\0")
                else:
                    array = np.ascontiguousarray(array)
                    digest.update(f"{array.dtype.str}{array.shape}\0".encode() + array.tobytes())
    return digest.hexdigest()


def run_key(config, data_key: str) -> str:
    """The key of one run: its configuration (seed included), the data's fingerprint and the code's."""
    payload = json.dumps({"config": config.to_json(), "data": data_key, "code": code_fingerprint()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def train_and_test(config, splits: dict, folder: Path) -> tuple[dict, int]:
    """Train ``config`` (checkpoints in ``folder``, no resume) and score it once on the test side:
    ``(test metrics, epochs run)``."""
    from emotion_lib.training.trainer import train  # TensorFlow only when a model is trained

    result = train(config, splits["train"], splits["validation"], folder, resume=False, progress=False)
    return neural_test_metrics(result.model, splits["test"]), result.epochs_run


_WORKER_SPLITS: dict = {}


def _init_worker(splits: dict) -> None:
    """A run's process: the splits, and its pinned TensorFlow threads (before TensorFlow runs an op)."""
    from emotion_lib.training.processes import pin_tensorflow_threads

    pin_tensorflow_threads()
    _WORKER_SPLITS.update(splits)


def _train_in_worker(config, folder: Path) -> tuple[dict, int, float, float]:
    """:func:`train_and_test` in a run's process, with its wall and CPU seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    metrics, epochs = train_and_test(config, _WORKER_SPLITS, folder)
    return metrics, epochs, time.perf_counter() - started, time.process_time() - cpu


def train_in_processes(
    jobs: Sequence[tuple], splits: dict, out_dir: Path, workers: int
) -> Iterator[tuple[int, tuple[dict, int, float, float]]]:
    """Train every job ``(config, folder name)`` in ``workers`` spawned processes (one TensorFlow
    thread each); yield ``(job index, (test metrics, epochs run, wall seconds, CPU seconds))`` as runs finish."""
    from emotion_lib.training.processes import run_in_processes  # the training package loads TensorFlow

    calls = [(config, Path(out_dir) / folder) for config, folder in jobs]
    yield from run_in_processes(_train_in_worker, calls, workers, _init_worker, (splits,))


def _stored(path: Path) -> tuple[dict, int] | None:
    try:
        data = json.loads(path.read_text())
        return data["metrics"], int(data["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def train_runs(
    jobs: Sequence[tuple], splits: dict, out_dir: Path, workers: int = 0, reuse: bool = True
) -> list[tuple[dict, int]]:
    """``(test metrics, epochs run)`` of every job ``(config, folder name)``, in the order of ``jobs``.

    Each job is trained by :func:`train_and_test` (checkpoints in ``out_dir/<folder name>``) in one of ``workers``
    spawned processes (0: :func:`~emotion_lib.utils.default_workers`, which follows ``EMOTION_WORKERS``), each with
    one TensorFlow thread: a run's outcome does not depend on ``workers`` or on the machine's
    cores. With ``reuse``, a job whose :func:`run_key` has a stored outcome under ``out_dir/results`` is not
    trained again; every trained outcome is stored there.
    """
    workers = workers or default_workers()
    data_key = data_fingerprint(splits)
    paths = [Path(out_dir) / "results" / f"{run_key(config, data_key)}.json" for config, _ in jobs]
    outcomes: list = [_stored(path) if reuse else None for path in paths]
    todo = [i for i, outcome in enumerate(outcomes) if outcome is None]
    LOG.info(
        "ablation runs: %d to train (%d processes), %d reused unchanged",
        *(len(todo), min(workers, len(todo)), len(jobs) - len(todo)),
    )
    for k, (metrics, epochs, seconds, cpu) in train_in_processes([jobs[i] for i in todo], splits, out_dir, workers):
        i = todo[k]
        outcomes[i] = (metrics, epochs)
        record = {"metrics": metrics, "epochs": epochs, "config": json.loads(jobs[i][0].to_json())}
        atomic_write_bytes(paths[i], json.dumps(record, sort_keys=True).encode())
        done = sum(outcome is not None for outcome in outcomes)
        LOG.info(
            "%s (%d of %d): %d epochs, test UA %.3f, %.0f s (%.0f s CPU)",
            *(jobs[i][1], done, len(jobs), epochs, metrics["ua"], seconds, cpu),
        )
    return outcomes
