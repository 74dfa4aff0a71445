"""The branched fusion model and the one configuration object holding every hyperparameter.

Audio branch: masked causal Conv1D -> BiLSTM (or Transformer encoder) -> temporal attention (or masked mean).
Video branch: BiLSTM (or Transformer encoder) -> temporal attention (or masked mean).
Optional cross-modal attention between the two sequences; then concatenation (plus a face-present flag)
-> Dense + BatchNorm + Dropout -> softmax over the six classes. Audio-only and video-only models come from
the same builder (``modalities``). Inputs are named ``audio``, ``audio_mask``, ``video``, ``video_mask``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import keras
from keras import layers

from emotion_lib.labels import EMOTIONS
from emotion_lib.layers import (CrossModalAttention, MaskedConv1D, MaskedMeanPooling, ModalityDropout,
                                TemporalAttention, TransformerEncoder, ZeroMasked)
from emotion_lib.utils import atomic_write_bytes


@dataclass
class ModelConfig:
    """All hyperparameters of the model, its training and its exports (notebooks pass these as parameters)."""

    modalities: tuple[str, ...] = ("audio", "video")
    audio_dim: int = 25
    video_dim: int = 128
    n_classes: int = len(EMOTIONS)
    # architecture
    encoder: str = "bilstm"  # "bilstm" or "transformer"
    conv_filters: int = 64
    conv_kernel: int = 5
    conv_strides: int = 2
    rnn_units: int = 64
    video_rnn_units: int = 32
    transformer_heads: int = 2
    transformer_ff: int = 128
    transformer_layers: int = 1
    attention_units: int = 64
    pooling: str = "attention"  # "attention" (TemporalAttention) or "mean" (masked mean over time)
    cross_modal: bool = False
    dense_units: int = 64
    dropout: float = 0.3
    modality_dropout: float = 0.2
    # training
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 30
    patience: int = 6
    lr_patience: int = 2
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    loss: str = "focal"  # "focal" or "crossentropy"
    focal_gamma: float = 2.0
    imbalance: str = "focal_alpha"  # "focal_alpha", "class_weight" or "none"
    augment: bool = True
    noise_std: float = 0.05
    scale_range: tuple[float, float] = (0.9, 1.1)
    tempo_range: tuple[float, float] = (0.9, 1.1)
    augment_p: float = 0.5
    gpu_batch_multiplier: int = 4
    seed: int = 0
    # exports: the fixed window of the TFLite models and the real-time predictor
    window_audio_frames: int = 200
    window_video_frames: int = 10
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        self.scale_range = tuple(self.scale_range)
        self.tempo_range = tuple(self.tempo_range)
        unknown = set(self.modalities) - {"audio", "video"}
        if not self.modalities or unknown:
            raise ValueError(f"modalities must be a non-empty subset of ('audio', 'video'), got {self.modalities}")
        if self.encoder not in ("bilstm", "transformer"):
            raise ValueError(f"encoder must be 'bilstm' or 'transformer', got {self.encoder!r}")
        if self.pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {self.pooling!r}")
        if self.loss not in ("focal", "crossentropy"):
            raise ValueError(f"loss must be 'focal' or 'crossentropy', got {self.loss!r}")
        if self.imbalance not in ("focal_alpha", "class_weight", "none"):
            raise ValueError(f"imbalance must be 'focal_alpha', 'class_weight' or 'none', got {self.imbalance!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        values = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {', '.join(unknown)}")
        return cls(**values)

    def save(self, path: Path | str) -> None:
        atomic_write_bytes(path, self.to_json().encode())

    @classmethod
    def load(cls, path: Path | str) -> "ModelConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model configuration not found: {path}")
        return cls.from_json(path.read_text())

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def _encode(x, mask, units: int, config: ModelConfig, name: str, unroll: bool):
    """A masked sequence encoder: BiLSTM (``2*units`` features) or Transformer (``2*units`` wide)."""
    if config.encoder == "transformer":
        return TransformerEncoder(2 * units, config.transformer_heads, config.transformer_ff,
                                  config.transformer_layers, config.dropout, name=f"{name}_transformer")(x, mask)
    lstm = layers.Bidirectional(layers.LSTM(units, return_sequences=True, unroll=unroll), name=f"{name}_bilstm")
    if unroll:  # Keras zeroes unrolled backward outputs with the unreversed mask; ZeroMasked does it right
        lstm.forward_layer.zero_output_for_mask = lstm.backward_layer.zero_output_for_mask = False
    return ZeroMasked(name=f"{name}_zero_padding")(lstm(x, mask=mask), mask)


def build_model(config: ModelConfig, unroll: bool = False) -> keras.Model:
    """The (uncompiled) fusion, audio-only or video-only model described by ``config``.

    Time dimensions are ``None``: one model serves every clip length and the fixed real-time window.
    ``unroll=True`` (fixed-length exports only) unrolls the LSTMs, with the same weights.
    Attention layers return their weights (outputs of layers ``audio_attention``/``video_attention``; see
    :func:`attention_model`); with ``pooling="mean"`` the layers ``audio_mean``/``video_mean`` have none.
    """
    inputs: dict = {}
    sequences: dict = {}
    if "audio" in config.modalities:
        inputs["audio"] = keras.Input((None, config.audio_dim), name="audio")
        inputs["audio_mask"] = keras.Input((None,), name="audio_mask")
        x, mask = MaskedConv1D(config.conv_filters, config.conv_kernel, config.conv_strides,
                               name="audio_conv")(inputs["audio"], inputs["audio_mask"])
        sequences["audio"] = (_encode(x, mask, config.rnn_units, config, "audio", unroll), mask)
    if "video" in config.modalities:
        inputs["video"] = keras.Input((None, config.video_dim), name="video")
        inputs["video_mask"] = keras.Input((None,), name="video_mask")
        mask, present = ModalityDropout(config.modality_dropout if "audio" in config.modalities else 0.0,
                                        seed=config.seed, name="video_dropout")(inputs["video_mask"])
        x = ZeroMasked(name="video_zero_missing")(inputs["video"], mask)
        sequences["video"] = (_encode(x, mask, config.video_rnn_units, config, "video", unroll), mask)
    if config.cross_modal and len(sequences) == 2:
        (a, a_mask), (v, v_mask) = sequences["audio"], sequences["video"]
        a_new = CrossModalAttention(config.attention_units, name="audio_attends_video")(a, a_mask, v, v_mask)
        v_new = CrossModalAttention(config.attention_units, name="video_attends_audio")(v, v_mask, a, a_mask)
        sequences = {"audio": (a_new, a_mask), "video": (v_new, v_mask)}
    pooled = []
    for name, (seq, mask) in sequences.items():
        if config.pooling == "mean":
            pooled.append(MaskedMeanPooling(name=f"{name}_mean")(seq, mask))
            continue
        context, _ = TemporalAttention(config.attention_units, return_attention=True,
                                       name=f"{name}_attention")(seq, mask)
        pooled.append(context)
    if "video" in sequences and "audio" in sequences:
        pooled.append(present)
    x = layers.Concatenate(name="fusion")(pooled) if len(pooled) > 1 else pooled[0]
    x = layers.Dense(config.dense_units, name="dense")(x)
    x = layers.BatchNormalization(name="batch_norm")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    outputs = layers.Dense(config.n_classes, activation="softmax", dtype="float32", name="emotion")(x)
    name = "_".join(config.modalities) + ("_xattn" if config.cross_modal else "") + f"_{config.encoder}" + (
        "_meanpool" if config.pooling == "mean" else "")
    return keras.Model(inputs, outputs, name=name)


def attention_model(model: keras.Model) -> keras.Model:
    """A model with the same inputs returning ``{modality: attention weights (B, T')}``.

    Audio weights are over the Conv1D output steps (``conv_strides`` audio frames each). A model without
    temporal attention (``pooling="mean"``) has no attention weights: a ValueError says so.
    """
    outputs = {}
    for modality in ("audio", "video"):
        try:
            outputs[modality] = model.get_layer(f"{modality}_attention").output[1]
        except ValueError:
            continue
    if not outputs:
        raise ValueError(f"model {model.name!r} has no temporal attention layer (a mean-pooling model, "
                         "pooling='mean'): it has no attention weights to show")
    return keras.Model(model.inputs, outputs)
