"""Saving, loading and exporting trained models: ``.keras`` with shape checks, TFLite float16 / int8.

``load_model`` gives a clear error for a missing or corrupt file; ``check_inputs`` names the expected and
received shapes when inputs do not fit the model. :func:`to_tflite` exports have a fixed window (one real-time
window, ``ModelConfig.window_*_frames``, and the clip's utterance vector for a model with that input);
:class:`TFLiteRunner` runs them with the same input dict as Keras.
:func:`to_tflite_any_length` exports any Keras network in float32 with its free axes kept (clips of any length, what
``predict`` runs without TensorFlow).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import emotion_lib.models.layers  # noqa: F401  (registers the custom layers for deserialisation)
import emotion_lib.models.losses  # noqa: F401
from emotion_lib.features.tflite import LiteModel, ModelFileError
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.fusion import build_model
from emotion_lib.sequences.data import SequenceData, fixed_window
from emotion_lib.utils import atomic_write_bytes

TFLITE_MODES = ("float32", "float16", "int8")


class InputShapeError(ValueError):
    """Inputs do not have the shapes the model expects."""


def save_model(model: keras.Model, path: Path | str, config: ModelConfig | None = None) -> Path:
    """Save ``model`` as ``.keras`` (and ``config`` next to it as ``<stem>.json``); return the model path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model path must end in .keras, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)
    if config is not None:
        config.save(path.with_suffix(".json"))
    return path


def load_model(path: Path | str, compile: bool = False, feature_dims: Mapping[str, int] | None = None) -> keras.Model:
    """Load a ``.keras`` model; ``ModelFileError`` names the file when it is missing or unreadable.

    ``feature_dims`` (e.g. ``{"audio": 25, "video": 128}``, the features at hand) raises ``InputShapeError``
    naming the expected and received shapes when the model was trained on other features.
    """
    model = _read_model(Path(path), compile)
    for name, dim in (feature_dims or {}).items():
        shapes = expected_shapes(model)
        if name in shapes and shapes[name][-1] != dim:
            raise InputShapeError(
                f"{path}: input {name!r} expects shape {_fmt(shapes[name])}, received features "
                f"of shape (any, any, {dim})"
            )
    return model


def _read_model(path: Path, compile: bool) -> keras.Model:
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a .keras model archive (corrupt or wrong format, {path.stat().st_size} bytes)"
        )
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as error:  # keras raises many types for damaged archives
        raise ModelFileError(f"cannot load model {path}: {type(error).__name__}: {error}") from error


def expected_shapes(model: keras.Model) -> dict[str, tuple]:
    """``{input name: shape}`` of a model, ``None`` for free dimensions (batch, time)."""
    return {t.name.split(":")[0]: tuple(t.shape) for t in model.inputs}


def check_inputs(model_or_shapes: keras.Model | Mapping[str, tuple], inputs: Mapping[str, np.ndarray]) -> None:
    """Raise ``InputShapeError`` naming expected and received shapes unless ``inputs`` fit the model."""
    expected = model_or_shapes if isinstance(model_or_shapes, Mapping) else expected_shapes(model_or_shapes)
    missing = sorted(set(expected) - set(inputs))
    if missing:
        raise InputShapeError(
            f"missing model inputs {missing}: the model expects {dict(expected)}, received "
            f"{ {k: tuple(np.shape(v)) for k, v in inputs.items()} }"
        )
    for name, shape in expected.items():
        got = tuple(np.shape(inputs[name]))
        fits = len(got) == len(shape) and all(e is None or e == g for e, g in zip(shape, got))
        if not fits:
            raise InputShapeError(f"input {name!r}: the model expects shape {_fmt(shape)}, received {got}")
    batch = {np.shape(inputs[name])[0] for name in expected}
    for modality in ("audio", "video"):
        if modality in expected and np.shape(inputs[modality])[1] != np.shape(inputs[f"{modality}_mask"])[1]:
            raise InputShapeError(
                f"input {modality!r} has {np.shape(inputs[modality])[1]} steps but "
                f"{modality}_mask has {np.shape(inputs[f'{modality}_mask'])[1]}"
            )
    if len(batch) > 1:
        raise InputShapeError(f"inputs have different batch sizes: {sorted(batch)}")


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def predict(model: keras.Model, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Class probabilities ``(B, n_classes)`` after checking input shapes."""
    check_inputs(model, inputs)
    names = expected_shapes(model)
    return np.asarray(model({k: tf.constant(inputs[k], tf.float32) for k in names}, training=False))


def _window_spec(model: keras.Model, config: ModelConfig) -> list[tf.TensorSpec]:
    """Batch-1 input specs of one window; the utterance vector (one per clip) keeps its width alone."""
    lengths = {"audio": config.window_audio_frames, "video": config.window_video_frames}
    specs = []
    for name, shape in expected_shapes(model).items():
        dims = shape[1:] if name == "utterance" else (lengths[name.replace("_mask", "")], *shape[2:])
        specs.append(tf.TensorSpec((1, *dims), tf.float32, name=name))
    return specs


def to_tflite(
    model: keras.Model,
    config: ModelConfig,
    mode: str = "float32",
    representative: Callable[[], Iterable[dict[str, np.ndarray]]] | None = None,
) -> bytes:
    """Convert ``model`` for one fixed window (batch 1) to a TFLite flatbuffer.

    ``float16`` stores weights in half precision; ``int8`` quantises weights and activations using
    ``representative`` (a callable yielding input dicts of one window, e.g. validation clips), keeping
    float32 inputs/outputs and falling back to float kernels where an op has no int8 version.
    """
    if mode not in TFLITE_MODES:
        raise ValueError(f"TFLite mode must be one of {TFLITE_MODES}, got {mode!r}")
    specs = _window_spec(model, config)
    names = [s.name for s in specs]
    if config.encoder == "bilstm":  # TFLite cannot read variables inside the LSTM while loop: unroll it
        unrolled = build_model(config, unroll=True)
        unrolled.set_weights(model.get_weights())
        model = unrolled

    @tf.function(input_signature=specs)
    def serve(*tensors):
        return {"emotion": model(dict(zip(names, tensors)), training=False)}

    # No trackable object: passing the Keras model makes the converter read stale variable values.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None:
            raise ValueError("int8 export needs a representative dataset (validation windows)")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([w[n].astype(np.float32) for n in names] for w in representative())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


class TFLiteRunner(LiteModel):
    """Runs a TFLite export on one window: ``runner(inputs) -> probabilities (1, n_classes)``, after checking the
    input shapes; TensorFlow's interpreter (the one the exports were checked with when written)."""

    def __init__(self, model: bytes | Path | str, num_threads: int = 1):
        super().__init__(model, num_threads, runtime="tensorflow")

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        check_inputs(self.shapes, inputs)
        return super().__call__(inputs)


def to_tflite_any_length(model: keras.Model, batch: int | None = 1) -> bytes:
    """A float32 TFLite flatbuffer of ``model`` keeping its free axes (e.g. the time axis): any clip length runs.

    The variables are frozen into constants first (the LSTM while loops cannot read variables in TFLite), so
    nothing is unrolled and the outputs agree with Keras to float rounding. ``batch`` fixes the batch axis (``None``
    keeps it free, e.g. for a face network embedding every face of a clip at once).
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    shapes = expected_shapes(model)
    specs = [tf.TensorSpec((batch, *shape[1:]), tf.float32, name=name) for name, shape in shapes.items()]
    names = [spec.name for spec in specs]
    single = len(model.inputs) == 1 and not isinstance(model.input, dict)

    @tf.function(input_signature=specs)
    def serve(*tensors):
        return {"output": model(tensors[0] if single else dict(zip(names, tensors)), training=False)}

    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()


def write_tflite(data: bytes, path: Path | str) -> Path:
    """Write a TFLite flatbuffer atomically."""
    atomic_write_bytes(path, data)
    return Path(path)


def clip_windows(data: SequenceData, config: ModelConfig, limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """One fixed window (the start of each clip, zero-padded) per clip, as batch-1 model inputs (with the clip's
    utterance vector when the model has that input)."""
    count = len(data) if limit is None else min(limit, len(data))
    return [
        fixed_window(data.make_batch([i], config.input_groups), config.window_audio_frames, config.window_video_frames)
        for i in range(count)
    ]


def export_tflite_models(
    model: keras.Model,
    config: ModelConfig,
    representative: SequenceData,
    modes: Sequence[str] = ("float16", "int8"),
    limit: int = 100,
) -> dict[str, bytes]:
    """TFLite flatbuffers for each mode; int8 calibrates on up to ``limit`` windows of ``representative``."""
    windows = clip_windows(representative, config, limit)
    return {mode: to_tflite(model, config, mode, representative=lambda: iter(windows)) for mode in modes}


def window_accuracy(model: keras.Model | TFLiteRunner, data: SequenceData, config: ModelConfig) -> float:
    """Accuracy on one window per clip (what the TFLite exports see), for Keras models or TFLite runners."""
    windows = clip_windows(data, config)
    if not windows:
        return float("nan")
    if isinstance(model, TFLiteRunner):  # batch 1, as exported
        probabilities = np.concatenate([model(window) for window in windows])
    else:  # one batch of every window: one call instead of one eager call per window (2 s each on 2 cores)
        probabilities = predict(model, {name: np.concatenate([w[name] for w in windows]) for name in windows[0]})
    return float(np.mean(probabilities.argmax(axis=1) == np.asarray(data.labels)[: len(windows)]))


def accuracy_change(
    model: keras.Model, exports: Mapping[str, bytes], data: SequenceData, config: ModelConfig
) -> dict[str, float]:
    """Window accuracy of the Keras model and of each export on ``data`` (validation), and the differences."""
    result = {"keras": window_accuracy(model, data, config)}
    for mode, flatbuffer in exports.items():
        result[mode] = window_accuracy(TFLiteRunner(flatbuffer), data, config)
        result[f"{mode}_minus_keras"] = result[mode] - result["keras"]
    return result
