"""The ``dlib`` face backend: dlib HOG detection + 5-point alignment + the 128-d ResNet face embedding shipped in
``face_recognition_models`` (identity-oriented), run by TensorFlow through the Keras port in
:mod:`emotion_lib.features.dlib_resnet` (dlib-bin has no BLAS: its own forward pass is ~7x slower)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotion_lib.features.faces.base import FaceBackend


class DlibBackend(FaceBackend):
    """dlib's 128-d ResNet face embedding (face_recognition_models weights), fully offline.

    The network runs in TensorFlow (:class:`~emotion_lib.features.dlib_resnet.DlibResnet`, equal to dlib's
    ``compute_face_descriptor`` within 1e-6); its converted weights are cached under ``cache_dir``
    (default ``CACHE_DIR/models``). TensorFlow is imported here, after openSMILE.
    """

    name, dim = "dlib", 128

    def __init__(
        self, detect_width: int = 320, upsample: int = 1, coarse_first: bool = True, cache_dir: Path | str | None = None
    ) -> None:
        from emotion_lib.features.dlib_resnet import DlibResnet

        super().__init__(detect_width, upsample, coarse_first)
        self._net = DlibResnet(cache_dir=cache_dir)

    @classmethod
    def key_options(cls, options: dict) -> dict:
        """``cache_dir`` only says where the converted weights are kept: it does not change the features."""
        return {name: value for name, value in options.items() if name != "cache_dir"}

    def _model_config(self) -> dict:
        import face_recognition_models
        import tensorflow as tf

        return {
            "model": "dlib_face_recognition_resnet_model_v1",
            "face_recognition_models": face_recognition_models.__version__,
            "runtime": "tensorflow",
            "tensorflow": tf.__version__,
        }

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        return self._net(chips)
