"""Inside a SageMaker training container: SageMaker's environment and hyperparameters -> the ``train`` command.

SageMaker's training toolkit runs the entry script with every user hyperparameter as ``--name value`` and also
sets ``SM_HPS`` (the same hyperparameters as JSON), ``SM_CHANNEL_<NAME>`` (the folder of each input channel under
``/opt/ml/input/data``), ``SM_MODEL_DIR`` (``/opt/ml/model``: packed into ``model.tar.gz`` on S3 when the job ends),
``SM_HOSTS`` (JSON list of the job's hosts) and ``SM_CURRENT_HOST``. Checkpoints live in the folder named by the job's
``CheckpointConfig.LocalPath``; the deploy side passes that path as the hyperparameter ``checkpoint_dir``, and it is
the trainer's output (resume) folder, so a job restarted after a spot interruption continues from the last epoch.
Everything here is pure (no TensorFlow, no file access) except :func:`publish_model`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_DIR = "/opt/ml/checkpoints"
"""The container folder that SageMaker syncs with ``CheckpointConfig.S3Uri`` (the trainer's resume folder)."""
TF_CONFIG_PORT = 2222
"""Port of each worker in the ``TF_CONFIG`` built for a multi-instance job (SageMaker leaves ports free)."""
COMMAND_OPTIONS = {"epochs": "--epochs", "seed": "--seed", "modalities": "--modalities", "encoder": "--encoder"}
"""``ModelConfig`` fields that the ``train`` command takes as options (``loss`` too, see :data:`LOSS_OPTION`)."""
LOSS_OPTION = "--loss"
JOB_FIELDS = ("corpus", "checkpoint_dir")
"""Hyperparameters that are not ``ModelConfig`` fields: the corpus name and the container's checkpoint folder."""


class SageMakerEnvError(ValueError):
    """The container's environment or hyperparameters cannot be turned into a training run."""


@dataclass(frozen=True)
class TrainingRun:
    """What the entry script does: ``argv`` for ``emotion_lib.cli.main``, environment variables to set first,
    and where the finished model goes (``publish_to`` is ``None`` on a non-chief worker of a multi-worker job)."""

    argv: list[str]
    environment: dict[str, str]
    output_dir: Path
    publish_to: Path | None


def hyperparameters(env: Mapping[str, str], args: Sequence[str] = ()) -> dict[str, object]:
    """The job's hyperparameters, values JSON-decoded where they are JSON (SageMaker passes strings).

    ``SM_HPS`` is read first; ``--name value`` pairs in ``args`` (the entry script's command line) override it.
    """
    values: dict[str, object] = {}
    try:
        values.update(json.loads(env.get("SM_HPS") or "{}"))
    except json.JSONDecodeError as error:
        raise SageMakerEnvError(f"SM_HPS is not JSON: {error}") from None
    args = list(args)
    if len(args) % 2:
        raise SageMakerEnvError(f"hyperparameter arguments must be --name value pairs, got {args}")
    for name, value in zip(args[::2], args[1::2]):
        if not name.startswith("--"):
            raise SageMakerEnvError(f"expected --name before {value!r}, got {name!r}")
        values[name[2:].replace("-", "_")] = value
    return {name: _decode(value) for name, value in values.items()}


def _decode(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def unsupported_settings(values: Mapping[str, object]) -> list[str]:
    """``ModelConfig`` fields set away from their defaults that the ``train`` command has no option for."""
    from emotion_lib.models.config import ModelConfig

    defaults = dataclasses.asdict(ModelConfig())
    passed = set(COMMAND_OPTIONS) | {"loss"}
    return sorted(
        name
        for name, value in values.items()
        if name in defaults and name not in passed and _same_type(value, defaults[name]) != defaults[name]
    )


def _same_type(value: object, default: object) -> object:
    """``value`` in the shape of ``default`` (JSON turns tuples into lists)."""
    return tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value


def tf_config(env: Mapping[str, str], port: int = TF_CONFIG_PORT) -> dict | None:
    """``TF_CONFIG`` for ``tf.distribute.MultiWorkerMirroredStrategy`` from ``SM_HOSTS`` / ``SM_CURRENT_HOST``.

    ``None`` for a single-instance job (several GPUs on one instance use the mirrored strategy instead). The hosts
    are sorted, so every instance builds the same cluster and ``algo-1`` is worker 0 (the chief).
    """
    hosts = sorted(json.loads(env.get("SM_HOSTS") or "[]"))
    if len(hosts) < 2:
        return None
    current = env.get("SM_CURRENT_HOST", "")
    if current not in hosts:
        raise SageMakerEnvError(f"SM_CURRENT_HOST {current!r} is not one of SM_HOSTS {hosts}")
    return {
        "cluster": {"worker": [f"{host}:{port}" for host in hosts]},
        "task": {"type": "worker", "index": hosts.index(current)},
    }


def training_run(env: Mapping[str, str], args: Sequence[str] = ()) -> TrainingRun:
    """The ``train`` command line (and environment) for this container, from SageMaker's ``env`` and ``args``.

    The ``train`` channel is the corpus folder, the optional ``cache`` channel the feature cache
    (``EMOTION_CACHE``). The trainer writes into the checkpoint folder (resumable); on a multi-worker job only
    the chief (worker 0) uses it, the others train in a private folder that is not published.
    """
    values = hyperparameters(env, args)
    data_dir = env.get("SM_CHANNEL_TRAIN")
    if not data_dir:
        raise SageMakerEnvError("SM_CHANNEL_TRAIN is not set: the job needs a 'train' input channel (the corpus)")
    if "corpus" not in values:
        raise SageMakerEnvError("the hyperparameter 'corpus' (a corpus name such as crema-d) is missing")
    unsupported = unsupported_settings(values)
    if unsupported:
        raise SageMakerEnvError(f"the train command has no option for: {', '.join(unsupported)}")
    environment = {}
    if env.get("SM_CHANNEL_CACHE"):
        environment["EMOTION_CACHE"] = env["SM_CHANNEL_CACHE"]
    cluster = tf_config(env)
    chief = cluster is None or cluster["task"]["index"] == 0
    if cluster is not None and "TF_CONFIG" not in env:
        environment["TF_CONFIG"] = json.dumps(cluster)
    output_dir = Path(str(values.get("checkpoint_dir") or CHECKPOINT_DIR))
    if not chief:
        output_dir = Path(env.get("SM_OUTPUT_DATA_DIR") or "/opt/ml/output/data") / "worker"
    argv = ["train", "--corpus", str(values["corpus"]), "--data-dir", data_dir, "--output-dir", str(output_dir)]
    for name, option in COMMAND_OPTIONS.items():
        if name in values:
            value = values[name]
            argv += [option, *map(str, value)] if isinstance(value, list) else [option, str(value)]
    if "loss" in values:
        argv += [LOSS_OPTION, str(values["loss"])]
    publish_to = Path(env.get("SM_MODEL_DIR") or "/opt/ml/model") if chief else None
    return TrainingRun(argv, environment, output_dir, publish_to)


def publish_model(run: TrainingRun) -> Path | None:
    """Copy the trainer's output folder into ``SM_MODEL_DIR`` (SageMaker uploads it as ``model.tar.gz``).

    Returns the folder written, or ``None`` on a non-chief worker.
    """
    if run.publish_to is None:
        return None
    if not run.output_dir.is_dir():
        raise SageMakerEnvError(f"the trainer wrote no output folder: {run.output_dir}")
    shutil.copytree(run.output_dir, run.publish_to, dirs_exist_ok=True)
    return run.publish_to
