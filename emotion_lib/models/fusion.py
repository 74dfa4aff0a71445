"""The branched fusion model and the one configuration object holding every hyperparameter.

Audio branch: masked causal Conv1D -> BiLSTM (or Transformer encoder) -> temporal attention (or masked mean).
Video branch: BiLSTM (or Transformer encoder) -> temporal attention (or masked mean).
Optional cross-modal attention between the two sequences; then concatenation (plus a face-present flag and,
with ``input_statistics``, masked statistics of the audio input frames; with ``utterance_features``, a Dense
projection of the per-clip utterance vector, input ``utterance``) -> Dense + BatchNorm + Dropout ->
softmax over the six classes (with ``utterance_logits``, linear class scores of the utterance vector are added
before the softmax: a "wide and deep" model whose wide part is a linear classifier on the functionals).
Audio-only and video-only models come from the same builder (``modalities``).
Inputs are named ``audio``, ``audio_mask``, ``video``, ``video_mask``.
"""

from __future__ import annotations

import keras
from keras import layers

from emotion_lib.models.config import ModelConfig
from emotion_lib.models.layers import (
    CrossModalAttention,
    MaskedConv1D,
    MaskedMeanPooling,
    MaskedStatisticsPooling,
    ModalityDropout,
    TemporalAttention,
    TransformerEncoder,
    ZeroMasked,
)


def _encode(x, mask, units: int, config: ModelConfig, name: str, unroll: bool):
    """A masked sequence encoder: BiLSTM (``2*units`` features) or Transformer (``2*units`` wide)."""
    if config.encoder == "transformer":
        return TransformerEncoder(
            2 * units,
            config.transformer_heads,
            config.transformer_ff,
            config.transformer_layers,
            config.dropout,
            name=f"{name}_transformer",
        )(x, mask)
    lstm = layers.Bidirectional(layers.LSTM(units, return_sequences=True, unroll=unroll), name=f"{name}_bilstm")
    if unroll:  # Keras zeroes unrolled backward outputs with the unreversed mask; ZeroMasked does it right
        lstm.forward_layer.zero_output_for_mask = lstm.backward_layer.zero_output_for_mask = False
    return ZeroMasked(name=f"{name}_zero_padding")(lstm(x, mask=mask), mask)


def _classifier(pooled: list, config: ModelConfig, utterance_scores=None):
    """Concatenation -> Dense + BatchNorm + ReLU + Dropout -> softmax (L2 on both kernels with ``config.l2``).

    ``utterance_scores`` (class scores straight from the utterance vector, see ``utterance_logits``) are added to
    the deep path's scores before the softmax.
    """
    x = layers.Concatenate(name="fusion")(pooled) if len(pooled) > 1 else pooled[0]
    regulariser = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    x = layers.Dense(config.dense_units, kernel_regularizer=regulariser, name="dense")(x)
    x = layers.BatchNormalization(name="batch_norm")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    if utterance_scores is None:
        return layers.Dense(
            config.n_classes, activation="softmax", kernel_regularizer=regulariser, dtype="float32", name="emotion"
        )(x)
    scores = layers.Dense(config.n_classes, kernel_regularizer=regulariser, dtype="float32", name="deep_scores")(x)
    scores = layers.Add(dtype="float32", name="scores")([scores, utterance_scores])
    return layers.Activation("softmax", dtype="float32", name="emotion")(scores)


def _utterance_dim(config: ModelConfig) -> int:
    if config.utterance_dim < 1:
        raise ValueError(
            f"utterance_features={config.utterance_features!r} is on but utterance_dim is {config.utterance_dim}: "
            "set it to the width of the utterance vectors"
        )
    return config.utterance_dim


def _utterance_branch(vector, config: ModelConfig):
    """Gaussian noise (``config.utterance_noise``, if any) -> Dropout -> Dense + ReLU (L2 ``config.utterance_l2``) on
    the per-clip utterance vector; with ``config.utterance_logits`` also linear class scores from the same dropped-out
    vector (same L2), else ``None``. Noise and dropout act in training only.
    """
    if config.utterance_noise > 0:
        vector = layers.GaussianNoise(config.utterance_noise, name="utterance_noise")(vector)
    x = layers.Dropout(config.utterance_dropout, name="utterance_dropout")(vector)
    regulariser = keras.regularizers.L2(config.utterance_l2) if config.utterance_l2 > 0 else None
    hidden = layers.Dense(
        config.utterance_units, activation="relu", kernel_regularizer=regulariser, name="utterance_dense"
    )(x)
    if not config.utterance_logits:
        return hidden, None
    scores = layers.Dense(config.n_classes, kernel_regularizer=regulariser, dtype="float32", name="utterance_scores")
    return hidden, scores(x)


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
        x, mask = MaskedConv1D(config.conv_filters, config.conv_kernel, config.conv_strides, name="audio_conv")(
            inputs["audio"], inputs["audio_mask"]
        )
        sequences["audio"] = (_encode(x, mask, config.rnn_units, config, "audio", unroll), mask)
    if "video" in config.modalities:
        inputs["video"] = keras.Input((None, config.video_dim), name="video")
        inputs["video_mask"] = keras.Input((None,), name="video_mask")
        mask, present = ModalityDropout(
            config.modality_dropout if "audio" in config.modalities else 0.0, seed=config.seed, name="video_dropout"
        )(inputs["video_mask"])
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
        context, _ = TemporalAttention(config.attention_units, return_attention=True, name=f"{name}_attention")(
            seq, mask
        )
        pooled.append(context)
    if "video" in sequences and "audio" in sequences:
        pooled.append(present)
    if config.input_statistics:
        statistics = MaskedStatisticsPooling(config.input_statistics, name="audio_statistics")(
            inputs["audio"], inputs["audio_mask"]
        )
        pooled.append(layers.Dropout(config.statistics_dropout, name="statistics_dropout")(statistics))
    utterance_scores = None
    if config.utterance_features:
        inputs["utterance"] = keras.Input((_utterance_dim(config),), name="utterance")
        hidden, utterance_scores = _utterance_branch(inputs["utterance"], config)
        pooled.append(hidden)
    return keras.Model(inputs, _classifier(pooled, config, utterance_scores), name=_model_name(config))


def _model_name(config: ModelConfig) -> str:
    """The model's name: its modalities and the choices that change its layers."""
    return (
        "_".join(config.modalities)
        + ("_xattn" if config.cross_modal else "")
        + f"_{config.encoder}"
        + ("_meanpool" if config.pooling == "mean" else "")
        + ("_stats" if config.input_statistics else "")
        + ("_utterance" if config.utterance_features else "")
        + ("_wide" if config.utterance_logits else "")
    )


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
        raise ValueError(
            f"model {model.name!r} has no temporal attention layer (a mean-pooling model, "
            "pooling='mean'): it has no attention weights to show"
        )
    return keras.Model(model.inputs, outputs)
