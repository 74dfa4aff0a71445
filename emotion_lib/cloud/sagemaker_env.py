"""Inside a SageMaker training container: SageMaker's environment and hyperparameters -> the ``train`` command.

SageMaker's training toolkit runs the entry script with every user hyperparameter as ``--name value`` and also
sets ``SM_HPS`` (the same hyperparameters as JSON), ``SM_CHANNEL_<NAME>`` (the folder of each input channel under
``/opt/ml/input/data``) and ``SM_MODEL_DIR`` (``/opt/ml/model``: packed into ``model.tar.gz`` on S3 when the job
ends). Checkpoints live in the folder named by the job's ``CheckpointConfig.LocalPath``; the deploy side passes that
path as the hyperparameter ``checkpoint_dir``, and it is the trainer's output (resume) folder, so a job restarted
after a spot interruption continues from its last epoch. Nothing here touches files except :func:`publish_model`.

One instance only: several instances would need ``tf.distribute.MultiWorkerMirroredStrategy``, and Keras 3's
``model.fit`` (the trainer's loop) fails under it (two workers on loopback, Keras 3.15 / TensorFlow 2.21: "Attempt to
convert a value (PerReplica...)", a known limitation of Keras 3). Several GPUs on one instance use the trainer's
mirrored strategy."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_DIR = "/opt/ml/checkpoints"
"""The container folder that SageMaker syncs with ``CheckpointConfig.S3Uri`` (the trainer's resume folder)."""
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
    the trainer's output folder and where the finished model is copied to."""

    argv: list[str]
    environment: dict[str, str]
    output_dir: Path
    publish_to: Path


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


def training_run(env: Mapping[str, str], args: Sequence[str] = ()) -> TrainingRun:
    """The ``train`` command line (and environment) for this container, from SageMaker's ``env`` and ``args``.

    The ``train`` channel is the corpus folder, the optional ``cache`` channel the feature cache
    (``EMOTION_CACHE``). The trainer writes into the checkpoint folder, so it resumes there after an interruption.
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
    output_dir = Path(str(values.get("checkpoint_dir") or CHECKPOINT_DIR))
    argv = ["train", "--corpus", str(values["corpus"]), "--data-dir", data_dir, "--output-dir", str(output_dir)]
    for name, option in COMMAND_OPTIONS.items():
        if name in values:
            value = values[name]
            argv += [option, *map(str, value)] if isinstance(value, list) else [option, str(value)]
    if "loss" in values:
        argv += [LOSS_OPTION, str(values["loss"])]
    return TrainingRun(argv, environment, output_dir, Path(env.get("SM_MODEL_DIR") or "/opt/ml/model"))


def publish_model(run: TrainingRun) -> Path:
    """Copy the trainer's output folder into ``SM_MODEL_DIR`` (SageMaker uploads it as ``model.tar.gz``); returns
    that folder."""
    if not run.output_dir.is_dir():
        raise SageMakerEnvError(f"the trainer wrote no output folder: {run.output_dir}")
    shutil.copytree(run.output_dir, run.publish_to, dirs_exist_ok=True)
    return run.publish_to
