"""GPU, mixed precision and distribution switches for training."""

from __future__ import annotations

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


def configure_hardware(config: ModelConfig) -> Hardware:
    """Mixed precision and a ``gpu_batch_multiplier`` times larger batch on a GPU, MirroredStrategy on several.

    On the CPU: float32, the configured batch and the default strategy (deterministic with a seed). On a GPU
    op determinism is switched off again (exact resume is then only guaranteed up to GPU nondeterminism).
    """
    gpus = len(tf.config.list_physical_devices("GPU"))
    if not gpus:
        keras.mixed_precision.set_global_policy("float32")
        return Hardware(tf.distribute.get_strategy(), config.batch_size, 0, False)
    keras.mixed_precision.set_global_policy("mixed_float16")
    tf.config.experimental.disable_op_determinism()  # some cuDNN kernels have no deterministic version
    strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
    return Hardware(strategy, config.batch_size * config.gpu_batch_multiplier * gpus, gpus, True)
