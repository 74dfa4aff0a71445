"""The classifier behind the streaming predictor: one window of named inputs in, class scores out.

:class:`WindowModel` wraps a Keras model or a TFLite runner; :func:`load_streaming_model` opens a model bundle
folder (the model with its feature normalisers and extraction settings), a bare ``.keras`` model or a ``.tflite``
export. Bad models give a :class:`ModelInputError` naming the file or the shapes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotion_lib.labels import EMOTIONS
from emotion_lib.paths import MODELS_DIR, PRETRAINED_DIR

if TYPE_CHECKING:
    from emotion_lib.training.bundle import ModelBundle

MODEL_INPUTS = ("audio", "audio_mask", "video", "video_mask", "utterance")
"""The named inputs a model may have (``utterance``: one vector per clip or window, beside the audio frames)."""


class ModelInputError(ValueError):
    """The model cannot serve the streaming window (missing file, wrong inputs or shapes, bad input array)."""


def _is_keras_model(model: Any) -> bool:
    keras = sys.modules.get("keras")  # not imported yet: no Keras model exists (a TFLite runner needs no Keras)
    return keras is not None and isinstance(model, keras.Model)


def _keras_input_shapes(model: Any) -> dict[str, tuple[int | None, ...]]:
    """Input name -> shape without the batch axis, for a functional Keras model."""
    inputs = model.inputs
    return {str(t.name).split(":")[0]: tuple(t.shape[1:]) for t in inputs}


class WindowModel:
    """Runs a classifier on one window given as a dict of the model's named inputs.

    ``model`` is a Keras model (its input names and shapes are read from it) or any callable taking the
    dict of ``(1, ...)`` arrays and returning ``(1, n_classes)`` scores, with ``input_shapes`` given
    (name -> shape without the batch axis, ``None`` for a free length), e.g. a TFLite runner.
    """

    def __init__(self, model: Any, input_shapes: Mapping[str, tuple[int | None, ...]] | None = None) -> None:
        keras_model = _is_keras_model(model)
        if input_shapes is None:
            if not keras_model:
                raise ModelInputError("a callable model needs input_shapes (name -> shape without batch axis)")
            input_shapes = _keras_input_shapes(model)
        self.input_shapes = {name: tuple(shape) for name, shape in input_shapes.items()}
        unknown = sorted(set(self.input_shapes) - set(MODEL_INPUTS))
        if unknown or not ({"audio", "video"} & set(self.input_shapes)):
            raise ModelInputError(
                f"model inputs {sorted(self.input_shapes)} do not match the expected {list(MODEL_INPUTS)}"
            )
        for name in ("audio", "video"):
            shape = self.input_shapes.get(name)
            if shape is not None and (len(shape) != 2 or shape[1] is None):
                raise ModelInputError(f"model input {name!r} has shape {shape}; expected (time, features)")
        shape = self.input_shapes.get("utterance")
        if shape is not None and (len(shape) != 1 or shape[0] is None):
            raise ModelInputError(f"model input 'utterance' has shape {shape}; expected (features,)")
        self._call = self._compile(model) if keras_model else model

    @staticmethod
    def _compile(model: Any) -> Callable[[dict[str, np.ndarray]], Any]:
        import tensorflow as tf

        return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)

    def feature_dim(self, modality: str) -> int | None:
        """Feature width the model expects for ``audio``, ``video`` or ``utterance``; None when it has no such
        input."""
        shape = self.input_shapes.get(modality)
        return None if shape is None else int(shape[-1])

    def time_steps(self, modality: str) -> int | None:
        shape = self.input_shapes.get(modality)
        return None if shape is None else shape[0]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {name: inputs[name] for name in self.input_shapes}
        out = np.asarray(self._call(feed), dtype=np.float64).reshape(-1)
        if out.shape[0] != len(EMOTIONS):
            raise ModelInputError(f"model returned {out.shape[0]} scores; expected {len(EMOTIONS)} classes")
        return out


def load_streaming_model(path: str | Path) -> tuple[WindowModel, ModelBundle | None]:
    """The model at ``path`` for streaming, and its bundle when it has one.

    ``path`` is a model bundle folder (``save_bundle``: notebook 04 writes ``reports/models/<corpus>_fusion/``),
    a file of a bundle (e.g. its ``model_int8.tflite`` export: the bundle's normalisers and extraction settings
    still apply), or a bare ``.keras`` model or ``.tflite`` export (no normalisers, no extraction settings).
    A missing path raises ``FileNotFoundError``; an unreadable model or bundle raises :class:`ModelInputError`.
    """
    from emotion_lib.training.bundle import is_bundle, load_bundle
    from emotion_lib.training.export import ModelFileError, TFLiteRunner, load_model

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"model file not found: {path}. Train and save one first (notebook 04 writes the model bundle "
            "reports/models/<corpus>_fusion/)."
        )
    try:
        if path.is_dir():
            bundle = load_bundle(path)
            return WindowModel(bundle.model), bundle
        bundle = load_bundle(path.parent) if is_bundle(path.parent) else None
        if path.suffix == ".tflite":
            if path.is_file() and path.stat().st_size == 0:
                raise ModelInputError(f"{path}: empty file (0 bytes), not a TFLite model")
            runner = TFLiteRunner(path)
            return WindowModel(runner, input_shapes={name: shape[1:] for name, shape in runner.shapes.items()}), bundle
        return WindowModel(load_model(path)), bundle
    except ModelFileError as exc:  # BundleError included
        message = str(exc)  # named once: most messages already hold the path
        raise ModelInputError(f"could not load model{'' if str(path) in message else f' {path}'}: {message}") from exc


DEMO_MODEL = PRETRAINED_DIR / "av"
"""The model the live demos load by default: the shipped real-data audio-visual model (see MODEL_CARD.md)."""


def demo_model_path(model_path: str | Path = "", corpus: str = "synthetic") -> Path:
    """The model the live demos load.

    Args:
        model_path: empty for :data:`DEMO_MODEL` (the real audio-visual model); ``"synthetic"`` for the bundle
            notebook 04 trained on ``corpus`` (``reports/models/<corpus>_fusion``); else a model path.
        corpus: the corpus of notebook 04's model.

    Raises:
        FileNotFoundError: the shipped model is missing (naming the command that trains it).
    """
    if str(model_path) == "synthetic":
        return MODELS_DIR / f"{corpus}_fusion"
    if str(model_path):
        return Path(model_path)
    if not (DEMO_MODEL / "manifest.json").is_file():
        raise FileNotFoundError(
            f"the shipped audio-visual model is missing: {DEMO_MODEL} holds no model bundle "
            "(train it with `python -m emotion_lib train --recipe av`, or pass another model)"
        )
    return DEMO_MODEL


def load_window_model(path: str | Path) -> WindowModel:
    """The model of a bundle folder, a ``.keras`` file or a ``.tflite`` export, for streaming, with clear errors."""
    return load_streaming_model(path)[0]
