"""GPU, mixed precision and distribution switches for training."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import keras
import tensorflow as tf

from emotion_lib.models.config import ModelConfig


@dataclass
class Hardware:
    """What :func:`configure_hardware` chose: distribution strategy, batch size, precision."""

    strategy: tf.distribute.Strategy
    batch_size: int
    gpus: int
    mixed_precision: bool

    def describe(self) -> str:
        device = f"{self.gpus} GPU(s)" if self.gpus else "CPU"
        return (
            f"{device}, {type(self.strategy).__name__}, batch {self.batch_size}, "
            f"{'mixed float16' if self.mixed_precision else 'float32'}"
        )


def tf_config_workers() -> int:
    """Workers named in ``TF_CONFIG`` (a multi-instance SageMaker job sets it, see ``emotion_lib.cloud``); 0 without."""
    try:
        return len(json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {}).get("worker", []))
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not a JSON cluster description: {error}") from None


def configure_hardware(config: ModelConfig) -> Hardware:
    """Mixed precision and a ``gpu_batch_multiplier`` times larger batch on a GPU, MirroredStrategy on several.

    On the CPU: float32, the configured batch and the default strategy (deterministic with a seed). On a GPU
    op determinism is switched off again (exact resume is then only guaranteed up to GPU nondeterminism). With
    ``TF_CONFIG`` naming several workers, MultiWorkerMirroredStrategy over them and a batch grown with the replicas.
    """
    gpus = len(tf.config.list_physical_devices("GPU"))
    if tf_config_workers() > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "float32")
        if gpus:
            tf.config.experimental.disable_op_determinism()
        batch = config.batch_size * (config.gpu_batch_multiplier if gpus else 1) * strategy.num_replicas_in_sync
        return Hardware(strategy, batch, gpus, bool(gpus))
    if not gpus:
        keras.mixed_precision.set_global_policy("float32")
        return Hardware(tf.distribute.get_strategy(), config.batch_size, 0, False)
    keras.mixed_precision.set_global_policy("mixed_float16")
    tf.config.experimental.disable_op_determinism()  # some cuDNN kernels have no deterministic version
    strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
    return Hardware(strategy, config.batch_size * config.gpu_batch_multiplier * gpus, gpus, True)
