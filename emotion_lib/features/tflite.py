"""Running TFLite flatbuffers, with or without TensorFlow: :class:`LiteModel` takes a dict of named arrays and
returns the model's first output, resizing inputs whose length is free (an export with a dynamic time axis).

The interpreter comes from the standalone LiteRT runtime (the ``ai-edge-litert`` package: a small library, no
TensorFlow import, so a process that only predicts starts in a fraction of the time) when it is installed, else from
TensorFlow's own ``tf.lite.Interpreter``. Both run the same kernels; ``runtime`` picks one explicitly.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

RUNTIMES = ("auto", "litert", "tensorflow")
"""``auto``: LiteRT when installed, else TensorFlow."""


class ModelFileError(RuntimeError):
    """A model file is missing, not a model, or cannot be read."""


def litert_available() -> bool:
    """True when the standalone LiteRT runtime (``ai-edge-litert``) is installed."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def open_interpreter(content: bytes, num_threads: int = 1, runtime: str = "auto") -> Any:
    """A TFLite interpreter of the flatbuffer ``content`` (tensors not yet allocated).

    Raises:
        ValueError: an unknown ``runtime``.
        ModelFileError: ``runtime='litert'`` without the ``ai-edge-litert`` package.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"TFLite runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "litert" or (runtime == "auto" and litert_available()):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise ModelFileError(f"the LiteRT runtime is not installed (ai-edge-litert): {error}") from error
        return Interpreter(model_content=content, num_threads=num_threads)
    import tensorflow as tf  # openSMILE is already loaded: this module is inside emotion_lib (see CONTRIBUTING.md)

    with warnings.catch_warnings():  # its notice points to LiteRT, which runs instead whenever it is installed
        warnings.filterwarnings("ignore", r"\s*Warning: tf.lite.Interpreter is deprecated", UserWarning)
        return tf.lite.Interpreter(model_content=content, num_threads=num_threads)


def _input_name(tensor_name: str) -> str:
    """``serving_default_audio_mask:0`` -> ``audio_mask``."""
    return tensor_name.split(":")[0].removeprefix("serving_default_")


class LiteModel:
    """A TFLite model run on a dict of named inputs: ``model(inputs) -> first output`` (batch axis kept).

    Args:
        model: the flatbuffer, or the path of a ``.tflite`` file.
        num_threads: interpreter threads.
        runtime: one of :data:`RUNTIMES`.

    Raises:
        ModelFileError: a missing file or a flatbuffer the interpreter cannot read, naming the file.
    """

    def __init__(self, model: bytes | Path | str, num_threads: int = 1, runtime: str = "auto") -> None:
        where = "TFLite model"
        if isinstance(model, (str, Path)):
            where = f"TFLite model {model}"
            path = Path(model)
            if not path.is_file():
                raise ModelFileError(f"TFLite model not found: {path}")
            model = path.read_bytes()
        try:
            self.interpreter = open_interpreter(model, num_threads, runtime)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(f"cannot read {where}: {error}") from error
        self.inputs = {_input_name(d["name"]): d for d in self.interpreter.get_input_details()}
        self.shapes: dict[str, tuple[int | None, ...]] = {
            name: tuple(None if s < 0 else int(s) for s in d.get("shape_signature", d["shape"]))
            for name, d in self.inputs.items()
        }
        """Input name -> shape (batch axis included), ``None`` where the length is free."""
        self.output = self.interpreter.get_output_details()[0]["index"]
        self._allocated = {name: tuple(int(s) for s in d["shape"]) for name, d in self.inputs.items()}

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        arrays = {name: np.asarray(inputs[name], np.float32) for name in self.inputs}
        wanted = {name: array.shape for name, array in arrays.items()}
        if wanted != self._allocated:  # a free length changed: resize, then allocate once for all inputs
            for name, detail in self.inputs.items():
                shape = self.shapes[name]
                if len(shape) != len(wanted[name]) or any(s not in (None, w) for s, w in zip(shape, wanted[name])):
                    fixed = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
                    raise ValueError(f"input {name!r}: the TFLite model takes shape {fixed}, received {wanted[name]}")
                self.interpreter.resize_tensor_input(detail["index"], wanted[name], strict=True)
            self.interpreter.allocate_tensors()
            self._allocated = wanted
        for name, detail in self.inputs.items():
            self.interpreter.set_tensor(detail["index"], arrays[name])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)
