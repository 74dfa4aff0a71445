"""Masked layers: attention weights, mean pooling, any-length operation, padding invariance, missing modality."""

import keras
import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.models.layers import (
    CrossModalAttention,
    MaskedConv1D,
    MaskedMeanPooling,
    MaskedStatisticsPooling,
    ModalityDropout,
    TemporalAttention,
    TransformerEncoder,
    masked_softmax,
)

RNG = np.random.default_rng(0)


def _seq(t, d=6, b=1):
    return RNG.normal(size=(b, t, d)).astype(np.float32)


def _pad(x, extra):
    return np.concatenate([x, RNG.normal(size=(x.shape[0], extra, x.shape[2])).astype(np.float32) * 50], axis=1)


def test_masked_softmax_ignores_masked_steps_and_gives_zeros_when_all_masked():
    scores = np.array([[1.0, 2.0, 30.0], [1.0, 2.0, 3.0]], np.float32)
    mask = np.array([[1, 1, 0], [0, 0, 0]], np.float32)
    weights = np.asarray(masked_softmax(scores, mask))
    expected = np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum()
    np.testing.assert_allclose(weights[0], [*expected, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(weights[1], 0.0)


def test_temporal_attention_matches_numpy_and_works_for_any_length():
    layer = TemporalAttention(units=4, return_attention=True)
    layer(_seq(5), np.ones((1, 5), np.float32))  # built on length 5
    x = _seq(9, b=2)
    mask = np.ones((2, 9), np.float32)
    mask[1, 6:] = 0
    context, weights = (np.asarray(t) for t in layer(x, mask))
    w, b, u = (np.asarray(v) for v in (layer.w, layer.b, layer.u))
    scores = np.tanh(x @ w + b) @ u
    for i in range(2):
        valid = mask[i] > 0
        a = np.exp(scores[i][valid] - scores[i][valid].max())
        a /= a.sum()
        np.testing.assert_allclose(weights[i][valid], a, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(weights[i][~valid], 0.0)
        np.testing.assert_allclose(context[i], a @ x[i][valid], rtol=1e-5, atol=1e-5)
    assert (w.shape, b.shape, u.shape) == ((6, 4), (4,), (4,))  # no weight is tied to the sequence length


def test_temporal_attention_padding_does_not_change_context():
    layer = TemporalAttention(units=8)
    x = _seq(7)
    out = np.asarray(layer(x, np.ones((1, 7), np.float32)))
    padded_mask = np.concatenate([np.ones((1, 7)), np.zeros((1, 5))], axis=1).astype(np.float32)
    np.testing.assert_allclose(np.asarray(layer(_pad(x, 5), padded_mask)), out, rtol=1e-6, atol=1e-6)


def test_masked_mean_pooling_averages_valid_steps_only_and_gives_zeros_without_any():
    layer = MaskedMeanPooling()
    x = _seq(6, b=3)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0]], np.float32)
    out = np.asarray(layer(x, mask))
    np.testing.assert_allclose(out[0], x[0].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], x[1][[0, 2, 5]].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[2], 0.0)
    changed = x.copy()
    changed[mask == 0] = 1e3  # masked steps (a faceless frame, padding) do not count
    np.testing.assert_allclose(np.asarray(layer(changed, mask)), out, rtol=1e-6, atol=1e-6)
    padded_mask = np.concatenate([mask, np.zeros((3, 4), np.float32)], axis=1)
    np.testing.assert_allclose(np.asarray(layer(_pad(x, 4), padded_mask)), out, rtol=1e-6, atol=1e-6)


def test_masked_statistics_pooling_matches_numpy_on_valid_steps_and_ignores_padding():
    layer = MaskedStatisticsPooling(("mean", "std", "max", "min"))
    x = _seq(6, d=3, b=3)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0]], np.float32)
    out = np.asarray(layer(x, mask))
    assert out.shape == (3, 12)
    for i, rows in ((0, slice(None)), (1, [0, 2, 5])):
        valid = x[i][rows]
        expected = np.concatenate([valid.mean(0), valid.std(0), valid.max(0), valid.min(0)])
        np.testing.assert_allclose(out[i], expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(out[2], 0.0)  # no valid step: zeros, no NaN
    changed = x.copy()
    changed[mask == 0] = 1e3  # masked steps change no statistic
    np.testing.assert_allclose(np.asarray(layer(changed, mask)), out, rtol=1e-6, atol=1e-6)
    padded_mask = np.concatenate([mask, np.zeros((3, 4), np.float32)], axis=1)
    np.testing.assert_allclose(np.asarray(layer(_pad(x, 4), padded_mask)), out, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="statistics"):
        MaskedStatisticsPooling(("mean", "median"))


def test_cross_modal_attention_with_absent_context_returns_the_query_and_ignores_context_padding():
    layer = CrossModalAttention(units=4)
    q, c = _seq(5), _seq(3, d=3)
    qm, cm = np.ones((1, 5), np.float32), np.ones((1, 3), np.float32)
    out = np.asarray(layer(q, qm, c, cm))
    assert not np.allclose(out, q)
    np.testing.assert_allclose(np.asarray(layer(q, qm, c, np.zeros_like(cm))), q, atol=1e-7)
    padded_cm = np.concatenate([cm, np.zeros((1, 4), np.float32)], axis=1)
    np.testing.assert_allclose(np.asarray(layer(q, qm, _pad(c, 4), padded_cm)), out, rtol=1e-5, atol=1e-6)


def test_masked_conv_is_causal_downsamples_the_mask_and_ignores_padding():
    layer = MaskedConv1D(filters=4, kernel_size=3, strides=2)
    x = _seq(9)
    y, m = (np.asarray(t) for t in layer(x, np.ones((1, 9), np.float32)))
    assert y.shape == (1, 5, 4) and m.tolist() == [[1, 1, 1, 1, 1]]
    mask = np.concatenate([np.ones((1, 9)), np.zeros((1, 6))], axis=1).astype(np.float32)
    y_pad, m_pad = (np.asarray(t) for t in layer(_pad(x, 6), mask))
    assert m_pad.tolist() == [[1, 1, 1, 1, 1, 0, 0, 0]]
    np.testing.assert_allclose(y_pad[:, :5], y, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y_pad[:, 5:], 0.0)


def test_modality_dropout_only_in_training_and_reports_presence():
    layer = ModalityDropout(rate=1.0, seed=1)
    mask = np.array([[1, 0, 1], [0, 0, 0]], np.float32)
    kept, present = (np.asarray(t) for t in layer(mask, training=False))
    np.testing.assert_array_equal(kept, mask)
    np.testing.assert_array_equal(present, [[1.0], [0.0]])
    dropped, present = (np.asarray(t) for t in layer(mask, training=True))
    np.testing.assert_array_equal(dropped, 0.0)
    np.testing.assert_array_equal(present, 0.0)


def test_transformer_encoder_is_padding_invariant_and_zero_on_padding():
    layer = TransformerEncoder(dim=8, num_heads=2, ff_dim=16, num_layers=2, dropout=0.0)
    x = _seq(6)
    out = np.asarray(layer(x, np.ones((1, 6), np.float32)))
    mask = np.concatenate([np.ones((1, 6)), np.zeros((1, 3))], axis=1).astype(np.float32)
    padded = np.asarray(layer(_pad(x, 3), mask))
    np.testing.assert_allclose(padded[:, :6], out, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(padded[:, 6:], 0.0)


@pytest.mark.parametrize(
    "layer",
    [
        TemporalAttention(16, return_attention=True),
        CrossModalAttention(8),
        TransformerEncoder(8, 2, 16, 1, 0.1),
        MaskedConv1D(4, 3, 2),
        ModalityDropout(0.3, seed=2),
        MaskedMeanPooling(),
        MaskedStatisticsPooling(("mean", "max")),
    ],
)
def test_layers_are_registered_and_config_round_trips(layer):
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == f"emotion_lib>{type(layer).__name__}"
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
