"""Training losses by name (:data:`LOSSES`), the categorical focal loss (Lin et al. 2017) with per-class alpha for
imbalanced emotion classes, and inverse-frequency class weights.

Adding a loss is one entry in :data:`LOSSES`: a name and a factory building the Keras loss from the
:class:`~emotion_lib.models.config.ModelConfig` and the training split's class weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np
from keras import ops

if TYPE_CHECKING:
    from emotion_lib.models.config import ModelConfig


@keras.saving.register_keras_serializable(package="emotion_lib")
class CategoricalFocalLoss(keras.losses.Loss):
    """``-sum_c alpha_c * y_c * (1 - p_c)^gamma * log(p_c)`` per clip, on probabilities (softmax outputs).

    ``log(p)`` is taken on probabilities clipped to ``[eps, 1 - eps]``, so a confident wrong prediction gives
    a large but finite loss. With ``gamma=0`` and no ``alpha`` it is the categorical cross-entropy.
    ``alpha`` is one weight per class (e.g. inverse training frequencies) or ``None``. ``label_smoothing`` ``s``
    replaces the one-hot targets by ``(1 - s) * y + s / k`` (``k`` classes), as Keras' losses do.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Sequence[float] | None = None,
        epsilon: float = 1e-7,
        label_smoothing: float = 0.0,
        name: str = "categorical_focal_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else [float(a) for a in np.asarray(alpha).ravel()]
        self.epsilon = float(epsilon)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.clip(ops.cast(y_pred, "float32"), self.epsilon, 1.0 - self.epsilon)
        y_true = ops.cast(y_true, "float32")
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / ops.shape(y_true)[-1]
        per_class = -y_true * ops.log(y_pred)
        if self.gamma:
            per_class = per_class * ops.power(1.0 - y_pred, self.gamma)
        if self.alpha is not None:
            per_class = per_class * ops.convert_to_tensor(self.alpha, dtype="float32")
        return ops.sum(per_class, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "gamma": self.gamma,
            "alpha": self.alpha,
            "epsilon": self.epsilon,
            "label_smoothing": self.label_smoothing,
        }


def class_frequency_weights(labels: Sequence[int], n_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``n / (k * count_c)`` (mean 1 over clips); absent classes get weight 0.

    Used as Keras class weights or as focal-loss ``alpha``; compute them on the training split only.
    """
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def _focal(config: ModelConfig, class_weights: np.ndarray) -> keras.losses.Loss:
    """:class:`CategoricalFocalLoss` with ``config.focal_gamma``; the class weights are its alpha with
    ``imbalance='focal_alpha'``. (Keras' ``CategoricalFocalCrossentropy`` renormalises the probabilities and
    differs in the last float bits, so it would change training numbers.)"""
    alpha = class_weights if config.imbalance == "focal_alpha" else None
    return CategoricalFocalLoss(gamma=config.focal_gamma, alpha=alpha, label_smoothing=config.label_smoothing)


def _crossentropy(config: ModelConfig, class_weights: np.ndarray) -> keras.losses.Loss:
    """Keras' categorical cross-entropy; class imbalance is handled by sample weights, never by focal alpha."""
    if config.imbalance == "focal_alpha":
        raise ValueError("imbalance='focal_alpha' needs loss='focal'; use imbalance='class_weight' with cross-entropy")
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)


LOSSES: dict[str, Callable[[ModelConfig, np.ndarray], keras.losses.Loss]] = {
    "focal": _focal,
    "crossentropy": _crossentropy,
}
"""Loss name (``ModelConfig.loss``) -> factory ``(config, class_weights) -> keras loss``."""


def check_loss(name: str) -> None:
    """Raise :class:`ValueError` listing the known losses when ``name`` is not one of :data:`LOSSES`."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")


def build_loss(config: ModelConfig, class_weights: np.ndarray) -> keras.losses.Loss:
    """The Keras loss named by ``config.loss``, built from the config and the training split's class weights."""
    check_loss(config.loss)
    return LOSSES[config.loss](config, class_weights)
