"""Models: the branched audio-visual network, its configuration, custom layers and losses."""

from emotion_lib.models.config import ModelConfig
from emotion_lib.models.fusion import attention_model, build_model
from emotion_lib.models.layers import (
    CrossModalAttention,
    MaskedMeanPooling,
    MaskedStatisticsPooling,
    TemporalAttention,
    TransformerEncoder,
)
from emotion_lib.models.losses import LOSSES, CategoricalFocalLoss, build_loss, class_frequency_weights

__all__ = [
    "LOSSES",
    "CategoricalFocalLoss",
    "CrossModalAttention",
    "MaskedMeanPooling",
    "MaskedStatisticsPooling",
    "ModelConfig",
    "TemporalAttention",
    "TransformerEncoder",
    "attention_model",
    "build_loss",
    "build_model",
    "class_frequency_weights",
]
