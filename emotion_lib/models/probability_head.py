"""A fixed head over per-frame class probabilities of a pretrained face network (no training).

The ``fer`` backend's ``output='probabilities'`` gives, per video frame, the FER2013 network's seven class
probabilities (:data:`~emotion_lib.features.faces.fer.FER2013_CLASSES`). :func:`build_probability_head` turns a
clip of them into the six :data:`~emotion_lib.labels.EMOTIONS`: per frame the probabilities are mapped to the six
classes (:func:`class_map`: each FER2013 class added to its emotion, surprise dropped or added to another), the
frames with a face are pooled (mean of the probabilities, or mean of their logarithms) and the result is
renormalised. With surprise dropped this is exactly the network's own answer over the six classes it shares with
:data:`~emotion_lib.labels.EMOTIONS`. A ``balanced`` head first divides each class's probability by its share of
the network's training images (:data:`~emotion_lib.features.faces.fer.FER2013_TRAINING_IMAGES`): by Bayes' rule,
the answer of a network trained with equal class priors, the decision unweighted accuracy rewards. The model has
the inputs of a video-only branched model (``video``, ``video_mask``), so bundles, the file predictor and the
streaming code load it like any other; it holds only built-in Keras operations and
:class:`~emotion_lib.models.layers.MaskedMeanPooling`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from emotion_lib.features.faces.fer import FER2013_CLASSES, FER2013_TO_EMOTIONS, FER2013_TRAINING_IMAGES
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.layers import MaskedMeanPooling
from emotion_lib.sequences.data import pad_sequences

POOLINGS = ("mean_probability", "mean_log_probability")
"""How the frames of a clip are pooled: the mean of the probabilities, or the mean of the log-probabilities (the
renormalised product of the frames' distributions)."""
LOG_FLOOR = 1e-6
"""Probabilities are clipped at this value before the logarithm."""


def class_map(source: Sequence[str] = FER2013_CLASSES, mapping: Mapping[str, str | None] | None = None) -> np.ndarray:
    """The ``(len(source), 6)`` 0/1 matrix adding each source class to its emotion (a row of zeros: dropped).

    Args:
        source: the source classes in the network's output order.
        mapping: source class -> one of :data:`~emotion_lib.labels.EMOTIONS` or ``None`` (default
            :data:`~emotion_lib.features.faces.fer.FER2013_TO_EMOTIONS`); every source class must be listed.
    """
    mapping = FER2013_TO_EMOTIONS if mapping is None else mapping
    missing = [name for name in source if name not in mapping]
    if missing:
        raise ValueError(f"class_map: no target given for source classes {missing}")
    matrix = np.zeros((len(source), len(EMOTIONS)), np.float32)
    for row, name in enumerate(source):
        if mapping[name] is not None:
            matrix[row, EMOTIONS.index(mapping[name])] = 1.0
    empty = [EMOTIONS[i] for i in np.flatnonzero(matrix.sum(axis=0) == 0)]
    if empty:
        raise ValueError(f"class_map: no source class maps to {empty}")
    return matrix


def build_probability_head(weights: np.ndarray, pooling: str = "mean_probability") -> keras.Model:
    """A Keras model ``{video (B, T, K), video_mask (B, T)} -> (B, 6)``: per frame the K source probabilities
    mapped to six (``p @ weights``: classes summed, a zero row dropped), pooled over the face frames, renormalised.

    Args:
        weights: ``(K, 6)`` non-negative map of the source classes to the six (e.g. :func:`class_map`).
        pooling: one of :data:`POOLINGS`. A clip without a face frame gives equal probabilities.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    weights = np.asarray(weights, np.float32)
    if weights.ndim != 2 or weights.shape[1] != len(EMOTIONS) or (weights < 0).any():
        raise ValueError(f"weights must be a non-negative (K, {len(EMOTIONS)}) matrix, got shape {weights.shape}")
    video = keras.Input((None, weights.shape[0]), name="video")
    mask = keras.Input((None,), name="video_mask")
    mapping = layers.Dense(len(EMOTIONS), use_bias=False, trainable=False, name="class_map")
    six = mapping(video)
    mapping.set_weights([weights])
    if pooling == "mean_log_probability":
        scores = MaskedMeanPooling(name="video_mean")(ops.log(ops.maximum(six, LOG_FLOOR)), mask)
    else:
        scores = ops.log(ops.maximum(MaskedMeanPooling(name="video_mean")(six, mask), LOG_FLOOR))
    outputs = layers.Activation("softmax", dtype="float32", name="emotion")(scores)
    return keras.Model({"video": video, "video_mask": mask}, outputs, name=f"video_probability_head_{pooling}")


@dataclass(frozen=True)
class ProbabilityHead:
    """A head of :func:`build_probability_head` over the FER2013 probabilities, as plain data (a recipe field)."""

    pooling: str = "mean_probability"
    """One of :data:`POOLINGS`."""
    surprise: str | None = None
    """The emotion FER2013's surprise counts for (e.g. ``"fear"``), or ``None``: surprise is dropped."""
    balanced: bool = False
    """Divide each FER2013 class's probability by its share of the training images (equal class priors)."""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.surprise is not None and self.surprise not in EMOTIONS:
            raise ValueError(f"surprise must be None or one of {EMOTIONS}, got {self.surprise!r}")

    @property
    def name(self) -> str:
        """A short name: ``<pooling>/surprise_<dropped|emotion>`` (``/balanced`` appended for a balanced head)."""
        return f"{self.pooling}/surprise_{self.surprise or 'dropped'}" + ("/balanced" if self.balanced else "")

    def weights(self) -> np.ndarray:
        """The ``(7, 6)`` map of FER2013's classes to the six (:func:`class_map`; a balanced head's rows divided by
        the class's share of the training images, scaled to a mean of 1)."""
        weights = class_map(FER2013_CLASSES, {**FER2013_TO_EMOTIONS, "surprise": self.surprise})
        if not self.balanced:
            return weights
        inverse_share = 1.0 / np.array([FER2013_TRAINING_IMAGES[name] for name in FER2013_CLASSES], np.float64)
        return (weights * (inverse_share / inverse_share.mean())[:, None]).astype(np.float32)

    def build(self) -> keras.Model:
        """The Keras model of this head (nothing to train)."""
        return build_probability_head(self.weights(), pooling=self.pooling)

    def predict(self, clips: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        """``(n, 6)`` probabilities of clips given as ``(frames (T, 7), face mask (T,) or None)``."""
        video, mask = pad_sequences([frames for frames, _ in clips], len(FER2013_CLASSES), masks=[m for _, m in clips])
        return np.asarray(self.build()({"video": video, "video_mask": mask}, training=False))
