"""Masked, length-agnostic Keras layers: temporal attention or mean pooling, utterance statistics, cross-modal
attention, a Transformer encoder.

Every layer takes an explicit float mask of shape ``(batch, time)`` (1 = real frame, 0 = padding or no face)
and ignores masked steps exactly, so a clip padded with extra steps gives the same output. All layers are
registered for ``.keras`` serialisation under the package ``emotion_lib``.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

_PACKAGE = "emotion_lib"


def masked_softmax(scores, mask, axis: int = -1):
    """Softmax of ``scores`` over ``axis`` restricted to ``mask`` (same shape, 1/0); all-masked rows give zeros.

    Computed in float32 so mixed precision cannot overflow the large negative fill value.
    """
    scores = ops.cast(scores, "float32")
    mask = ops.cast(mask, "float32")
    filled = ops.where(mask > 0, scores, ops.full_like(scores, -1e4))
    shifted = filled - ops.stop_gradient(ops.max(filled, axis=axis, keepdims=True))
    weights = ops.exp(shifted) * mask
    # The sum is >= 1 when a step is valid (the maximum contributes exp(0)); an all-masked row divides by 1.
    # No tiny epsilon: float16 exports would round it to 0 and divide 0 by 0.
    empty = 1.0 - ops.max(mask, axis=axis, keepdims=True)
    return weights / (ops.sum(weights, axis=axis, keepdims=True) + empty)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TemporalAttention(layers.Layer):
    """Additive attention over time: ``a = softmax_t(u . tanh(x W + b))``, output ``sum_t a_t x_t``.

    Unlike a bias of shape ``(timesteps, 1)``, ``b`` has one value per attention unit, so the layer works for
    any sequence length. Call as ``layer(x, frame_mask)``; with ``return_attention=True`` it returns
    ``(context, weights)`` where ``weights`` has shape ``(batch, time)`` and is 0 on masked steps.
    """

    def __init__(self, units: int = 64, return_attention: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.return_attention = bool(return_attention)

    def build(self, input_shape):
        dim = input_shape[-1]
        self.w = self.add_weight(name="w", shape=(dim, self.units), initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.u = self.add_weight(name="u", shape=(self.units,), initializer="glorot_uniform")

    def call(self, inputs, frame_mask):
        hidden = ops.tanh(ops.matmul(inputs, self.w) + self.b)
        scores = ops.sum(hidden * self.u, axis=-1)
        weights = masked_softmax(scores, frame_mask)
        context = ops.sum(inputs * ops.cast(weights[..., None], inputs.dtype), axis=1)
        return (context, weights) if self.return_attention else context

    def compute_output_shape(self, input_shape):
        context = (input_shape[0], input_shape[-1])
        return (context, tuple(input_shape[:2])) if self.return_attention else context

    def get_config(self):
        return {**super().get_config(), "units": self.units, "return_attention": self.return_attention}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedMeanPooling(layers.Layer):
    """Mean over the valid steps, ``sum_t m_t x_t / sum_t m_t``: the attention-free alternative to
    :class:`TemporalAttention` (``pooling="mean"``). Call as ``layer(x, frame_mask)``; a clip without a valid
    step gives zeros (the count is clamped to 1, so no division by zero).
    """

    def call(self, inputs, frame_mask):
        mask = ops.cast(frame_mask, inputs.dtype)[..., None]
        return ops.sum(inputs * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


STATISTICS = ("mean", "std", "max", "min")
"""The statistics :class:`MaskedStatisticsPooling` can compute per feature."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedStatisticsPooling(layers.Layer):
    """Per-feature statistics over the valid steps, concatenated in the order of ``statistics`` (a subset of
    :data:`STATISTICS`): the utterance-level functionals beside a learned sequence summary.

    Call as ``layer(x, frame_mask)``; the output has ``len(statistics) * features`` columns. Padded steps do not
    change any statistic (the standard deviation is the population one of the valid steps); a clip without a
    valid step gives zeros.
    """

    def __init__(self, statistics: tuple[str, ...] = ("mean", "std"), **kwargs):
        super().__init__(**kwargs)
        unknown = sorted(set(statistics) - set(STATISTICS))
        if not statistics or unknown:
            raise ValueError(f"statistics must be a non-empty subset of {STATISTICS}, got {tuple(statistics)}")
        self.statistics = tuple(statistics)

    def call(self, inputs, frame_mask):
        x = ops.cast(inputs, "float32")
        mask = ops.cast(frame_mask, "float32")[..., None]
        count = ops.maximum(ops.sum(mask, axis=1), 1.0)
        mean = ops.sum(x * mask, axis=1) / count
        any_valid = ops.minimum(ops.sum(mask, axis=1), 1.0)
        out = {"mean": mean}
        if "std" in self.statistics:
            variance = ops.sum(ops.square(x - mean[:, None, :]) * mask, axis=1) / count
            out["std"] = ops.sqrt(variance + 1e-6) * any_valid
        if "max" in self.statistics:
            out["max"] = ops.max(ops.where(mask > 0, x, ops.full_like(x, -1e9)), axis=1) * any_valid
        if "min" in self.statistics:
            out["min"] = ops.min(ops.where(mask > 0, x, ops.full_like(x, 1e9)), axis=1) * any_valid
        result = ops.concatenate([out[name] for name in self.statistics], axis=-1)
        return ops.cast(result, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.statistics) * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "statistics": list(self.statistics)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CrossModalAttention(layers.Layer):
    """Each query step attends to the other modality's (masked) steps; returns ``query + attended``.

    Call as ``layer(query, query_mask, context, context_mask)``. Query steps that are masked, or whose
    context is entirely masked (a clip without a face), get no update, so the output equals the query there.
    """

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, query_shape, query_mask_shape=None, context_shape=None, context_mask_shape=None):
        self.q = layers.Dense(self.units, use_bias=False, name="query", dtype=self.dtype_policy)
        self.k = layers.Dense(self.units, use_bias=False, name="key", dtype=self.dtype_policy)
        self.v = layers.Dense(query_shape[-1], use_bias=False, name="value", dtype=self.dtype_policy)
        self.q.build(query_shape)
        self.k.build(context_shape)
        self.v.build(context_shape)

    def call(self, query, query_mask, context, context_mask):
        scores = ops.matmul(self.q(query), ops.transpose(self.k(context), (0, 2, 1))) / math.sqrt(self.units)
        pair_mask = ops.cast(query_mask, "float32")[:, :, None] * ops.cast(context_mask, "float32")[:, None, :]
        weights = ops.cast(masked_softmax(scores, pair_mask), query.dtype)
        return query + ops.matmul(weights, self.v(context))

    def compute_output_shape(self, query_shape, *args):
        return query_shape

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransformerEncoder(layers.Layer):
    """A stack of pre-norm self-attention blocks with sinusoidal positions, masked; padded steps output 0."""

    def __init__(
        self, dim: int = 64, num_heads: int = 2, ff_dim: int = 128, num_layers: int = 1, dropout: float = 0.1, **kwargs
    ):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.ff_dim = int(dim), int(num_heads), int(ff_dim)
        self.num_layers, self.dropout = int(num_layers), float(dropout)

    def build(self, input_shape):
        policy = self.dtype_policy
        self.project = layers.Dense(self.dim, name="project", dtype=policy)
        self.project.build(input_shape)
        shape = (*input_shape[:-1], self.dim)
        self.blocks = []
        for i in range(self.num_layers):
            block = {
                "norm1": layers.LayerNormalization(name=f"norm1_{i}", dtype=policy),
                "attention": layers.MultiHeadAttention(
                    self.num_heads,
                    max(self.dim // self.num_heads, 1),
                    dropout=self.dropout,
                    name=f"attention_{i}",
                    dtype=policy,
                ),
                "norm2": layers.LayerNormalization(name=f"norm2_{i}", dtype=policy),
                "ff1": layers.Dense(self.ff_dim, activation="relu", name=f"ff1_{i}", dtype=policy),
                "ff2": layers.Dense(self.dim, name=f"ff2_{i}", dtype=policy),
                "drop": layers.Dropout(self.dropout, name=f"drop_{i}"),
            }
            block["norm1"].build(shape)
            block["attention"].build(shape, shape)
            block["norm2"].build(shape)
            block["ff1"].build(shape)
            block["ff2"].build((*shape[:-1], self.ff_dim))
            self.blocks.append(block)

    def _positions(self, length):
        position = ops.cast(ops.arange(length), "float32")[:, None]
        rates = ops.exp(ops.cast(ops.arange(0, self.dim, 2), "float32") * (-math.log(10000.0) / self.dim))
        angles = position * rates[None, :]
        table = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (length, -1))
        return table[:, : self.dim]

    def call(self, inputs, frame_mask, training=None):
        valid = ops.cast(frame_mask, self.compute_dtype)[..., None]
        x = self.project(inputs) + ops.cast(self._positions(ops.shape(inputs)[1]), self.compute_dtype)[None]
        bool_mask = ops.cast(frame_mask, "bool")
        attention_mask = ops.logical_and(bool_mask[:, :, None], bool_mask[:, None, :])
        for block in self.blocks:
            normed = block["norm1"](x)
            attended = block["attention"](normed, normed, attention_mask=attention_mask, training=training)
            x = x + block["drop"](attended, training=training)
            x = x + block["drop"](block["ff2"](block["ff1"](block["norm2"](x))), training=training)
            x = x * valid
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.dim)

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedConv1D(layers.Layer):
    """Causal strided Conv1D + ReLU on masked frames; returns ``(features, downsampled_mask)``.

    Causal padding makes each output step depend only on its own and earlier input steps, with a fixed left
    padding, so trailing padding never changes a real step's output (``same`` padding with strides would
    shift the alignment with the padded length). Output step ``i`` is valid when input step ``i*strides``
    is.
    """

    def __init__(self, filters: int = 64, kernel_size: int = 5, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = int(filters), int(kernel_size), int(strides)

    def build(self, input_shape):
        self.conv = layers.Conv1D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="causal",
            activation="relu",
            name="conv",
            dtype=self.dtype_policy,
        )
        self.conv.build(input_shape)

    def call(self, inputs, frame_mask):
        mask = ops.cast(frame_mask, "float32")
        x = self.conv(inputs * ops.cast(mask, inputs.dtype)[..., None])
        out_mask = mask[:, :: self.strides]
        return x * ops.cast(out_mask, x.dtype)[..., None], out_mask

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else -(-input_shape[1] // self.strides)
        return (input_shape[0], length, self.filters), (input_shape[0], length)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ModalityDropout(layers.Layer):
    """Drops a whole modality's mask per clip during training; returns ``(mask, present)``.

    ``present`` (shape ``(batch, 1)``) is 1 when the clip has at least one valid frame of the modality after
    dropout, so the classifier knows when a branch carries nothing (audio-only clips, faceless videos).
    Inference never drops.
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, frame_mask, training=None):
        mask = ops.cast(frame_mask, "float32")
        if training and self.rate > 0:
            keep = keras.random.uniform((ops.shape(mask)[0], 1), seed=self.seed_generator) >= self.rate
            mask = mask * ops.cast(keep, "float32")
        return mask, ops.max(mask, axis=1, keepdims=True)

    def compute_output_shape(self, frame_mask_shape):
        return tuple(frame_mask_shape), (frame_mask_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ZeroMasked(layers.Layer):
    """Multiplies a sequence by its mask so padded or faceless steps are exactly zero.

    It consumes a Keras mask attached by a preceding LSTM (our layers take explicit masks instead).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, previous_mask):
        return None

    def call(self, inputs, frame_mask):
        return inputs * ops.cast(frame_mask, inputs.dtype)[..., None]

    def compute_output_shape(self, input_shape):
        return input_shape
