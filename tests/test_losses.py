"""Focal loss against hand-computed values, cross-entropy equivalence, stability; frequency weights."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.losses import LOSSES, CategoricalFocalLoss, build_loss, class_frequency_weights


def test_focal_loss_matches_hand_computed_value():
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    p = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]], np.float32)
    loss = CategoricalFocalLoss(gamma=2.0, alpha=[0.25, 0.5, 0.25])
    # by hand: -alpha_true * (1 - p_true)^gamma * log(p_true), averaged over the batch
    first = -0.5 * (1 - 0.7) ** 2 * math.log(0.7)
    second = -0.25 * (1 - 0.6) ** 2 * math.log(0.6)
    assert float(loss(y, p)) == pytest.approx((first + second) / 2, rel=1e-5)
    per_clip = np.asarray(loss.call(tf.constant(y), tf.constant(p)))
    np.testing.assert_allclose(per_clip, [first, second], rtol=1e-5)


def test_focal_loss_with_gamma_zero_and_no_alpha_is_cross_entropy():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(6), size=16).astype(np.float32)
    y = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 16)]
    focal = float(CategoricalFocalLoss(gamma=0.0)(y, probs))
    ce = float(keras.losses.CategoricalCrossentropy()(y, probs))
    assert focal == pytest.approx(ce, rel=1e-5)


def test_focusing_down_weights_easy_examples_by_one_minus_p_to_gamma():
    y = np.array([[1.0, 0.0]], np.float32)
    for p_true in (0.55, 0.9, 0.99):
        p = np.array([[p_true, 1 - p_true]], np.float32)
        ratio = float(CategoricalFocalLoss(gamma=3.0)(y, p)) / float(CategoricalFocalLoss(gamma=0.0)(y, p))
        assert ratio == pytest.approx((1 - p_true) ** 3, rel=1e-3)


def test_focal_loss_is_finite_with_saturated_probabilities_and_gradients():
    logits = tf.Variable([[60.0, -60.0, 0.0], [0.0, 0.0, 0.0]])
    y = tf.constant([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    loss_fn = CategoricalFocalLoss(gamma=2.0, alpha=[1.0, 2.0, 1.0])
    with tf.GradientTape() as tape:
        loss = loss_fn(y, tf.nn.softmax(logits))
    grad = tape.gradient(loss, logits)
    assert np.isfinite(float(loss)) and float(loss) > 10.0  # confidently wrong: large but finite
    assert np.all(np.isfinite(grad.numpy()))


def test_focal_loss_config_round_trip_and_bad_gamma():
    loss = CategoricalFocalLoss(gamma=1.5, alpha=[1, 2, 3])
    clone = CategoricalFocalLoss.from_config(loss.get_config())
    assert (clone.gamma, clone.alpha) == (1.5, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="gamma"):
        CategoricalFocalLoss(gamma=-1.0)


def test_label_smoothing_matches_keras_cross_entropy_and_reaches_both_losses():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(6), size=16).astype(np.float32)
    y = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 16)]
    smoothed = float(CategoricalFocalLoss(gamma=0.0, label_smoothing=0.1)(y, probs))
    assert smoothed == pytest.approx(float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(y, probs)), 1e-5)
    assert smoothed != pytest.approx(float(CategoricalFocalLoss(gamma=0.0)(y, probs)), 1e-3)
    weights = np.ones(6, np.float32)
    assert build_loss(ModelConfig(label_smoothing=0.2), weights).label_smoothing == 0.2
    crossentropy = build_loss(ModelConfig(loss="crossentropy", imbalance="class_weight", label_smoothing=0.2), weights)
    assert crossentropy.get_config()["label_smoothing"] == 0.2
    clone = CategoricalFocalLoss.from_config(CategoricalFocalLoss(label_smoothing=0.1).get_config())
    assert clone.label_smoothing == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        CategoricalFocalLoss(label_smoothing=1.0)


def test_class_frequency_weights_are_inverse_frequencies_with_absent_classes_zero():
    weights = class_frequency_weights([0, 0, 0, 1, 2, 2], n_classes=4)
    np.testing.assert_allclose(weights, [6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2), 0.0], rtol=1e-6)
    labels = np.array([0, 0, 0, 1, 2, 2])
    assert weights[labels].mean() == pytest.approx(1.0)


def test_losses_are_built_by_name_from_the_config():
    weights = np.array([1.0, 2.0, 0.5, 1.0, 1.0, 1.0], np.float32)
    focal = build_loss(ModelConfig(focal_gamma=1.5), weights)
    assert isinstance(focal, CategoricalFocalLoss) and focal.gamma == 1.5 and focal.alpha == weights.tolist()
    assert build_loss(ModelConfig(imbalance="class_weight"), weights).alpha is None
    crossentropy = build_loss(ModelConfig(loss="crossentropy", imbalance="class_weight"), weights)
    assert isinstance(crossentropy, keras.losses.CategoricalCrossentropy)


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown loss 'hinge'; expected one of focal, crossentropy"):
        ModelConfig(loss="hinge")


def test_a_registered_loss_is_accepted_by_the_config(monkeypatch):
    monkeypatch.setitem(LOSSES, "squared_error", lambda config, class_weights: keras.losses.MeanSquaredError())
    loss = build_loss(ModelConfig(loss="squared_error", imbalance="none"), np.ones(6, np.float32))
    assert isinstance(loss, keras.losses.MeanSquaredError)
