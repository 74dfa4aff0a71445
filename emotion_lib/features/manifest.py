"""A model bundle read without TensorFlow: its manifest, checksums, feature settings, normalisers and TFLite files.

A bundle folder (written by :func:`~emotion_lib.training.bundle.save_bundle`) lists every file with its sha256 in
``manifest.json``. This module reads what feeding new clips to the model needs: the feature extraction settings,
the fitted normalisers, the model configuration as plain values and, when the bundle carries them, the float32
TFLite model for clips of any length (``model.tflite``) and a TFLite copy of the face backend's network. Every file is
checked against its checksum first; every problem is a :class:`BundleError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.features.tflite import ModelFileError

BUNDLE_FORMAT = "emotion_lib model bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
CONFIG_FILE = "config.json"
NORMALISERS_FILE = "normalisers.json"
LITE_MODEL_FILE = "model.tflite"
"""The float32 TFLite model with a free time axis (``manifest['lite_model']``): what ``predict`` runs."""


class BundleError(ModelFileError):
    """A model bundle is missing, incomplete, corrupt, or its model does not fit its configuration."""


def face_network_file(backend: str) -> str:
    """File name of the TFLite copy of face backend ``backend``'s network inside a bundle."""
    return f"face_{backend}.tflite"


@dataclass
class BundleFeatures:
    """What a bundle says about its inputs (see :func:`read_bundle_features`); no model is loaded."""

    path: Path
    config: dict[str, Any]
    """``config.json`` as plain values (the ``ModelConfig`` fields)."""
    normalisers: dict[str, Normaliser]
    extraction: ExtractionConfig
    lite_model: Path | None = None
    """The float32 any-length TFLite model, when the bundle has one."""
    face_network: dict[str, Any] = field(default_factory=dict)
    """``manifest['face_network']``: ``file`` (a path here), ``backend``, ``options``, ``source_sha256``."""
    metadata: dict[str, Any] = field(default_factory=dict)


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The manifest of the bundle at ``path`` (cheap: no model is loaded, no checksum computed)."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise BundleError(
            f"model bundle not found: {path}. Train and save one first "
            "(notebook 04 writes reports/models/<corpus>_fusion/)"
        )
    if not manifest_path.is_file():
        raise BundleError(f"{path} is not a model bundle: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise BundleError(f"cannot read the bundle manifest {manifest_path}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT or "files" not in manifest:
        raise BundleError(f"{manifest_path} is not a model bundle manifest")
    if manifest.get("version", 0) > BUNDLE_VERSION:
        raise BundleError(f"{manifest_path}: bundle version {manifest['version']} is newer than this library's")
    return manifest


def verify_checksums(path: Path, manifest: Mapping[str, Any]) -> None:
    """Raise :class:`BundleError` naming the first listed file that is missing or differs from its checksum."""
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"model bundle {path} is incomplete: {file} ({entry.get('role', 'file')}) is missing")
        if sha256(file) != entry.get("sha256"):
            raise BundleError(f"{file} does not match its checksum in {path / MANIFEST}: changed or corrupt")


def read_file(file: Path, reader: Any) -> Any:
    """``reader(file)``, with any parse error turned into a :class:`BundleError` naming ``file``."""
    try:
        return reader(file)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise BundleError(f"cannot read {file}: {type(error).__name__}: {error}") from error


def read_bundle_features(path: Path | str, manifest: Mapping[str, Any] | None = None) -> BundleFeatures:
    """Check every file of the bundle at ``path`` against its checksum and read its feature side.

    Args:
        path: the bundle folder.
        manifest: its manifest when already read (:func:`read_manifest`).

    Raises:
        BundleError: naming the file that is missing, corrupt, altered since saving or unreadable.
    """
    path = Path(path)
    manifest = read_manifest(path) if manifest is None else manifest
    verify_checksums(path, manifest)
    config = read_file(path / CONFIG_FILE, lambda p: dict(json.loads(p.read_text())))
    states = read_file(path / NORMALISERS_FILE, lambda p: json.loads(p.read_text()))
    normalisers = read_file(path / NORMALISERS_FILE, lambda _: {k: Normaliser.from_state(s) for k, s in states.items()})
    extraction = read_file(path / MANIFEST, lambda _: ExtractionConfig(**manifest["extraction"]))
    lite = manifest.get("lite_model")
    face_network = dict(manifest.get("face_network", {}))
    if face_network:
        face_network["file"] = path / face_network["file"]
    return BundleFeatures(
        path,
        config,
        normalisers,
        extraction,
        None if lite is None else path / lite,
        face_network,
        dict(manifest.get("metadata", {})),
    )


def sha256(file: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
