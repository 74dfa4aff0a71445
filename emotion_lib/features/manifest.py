"""A model bundle read without TensorFlow: its manifest, checksums, feature settings, normalisers and TFLite files.

A bundle folder (written by :func:`~emotion_lib.training.bundle.save_bundle`) lists every file with its sha256 in
``manifest.json``. This module reads what feeding new clips to the model needs: the feature extraction settings,
the fitted normalisers, the model configuration as plain values and, when the bundle carries them, the float32
TFLite model for clips of any length (``model.tflite``) and a TFLite copy of the face backend's network. Every file is
checked against its checksum first; every problem is a :class:`BundleError` naming the file.

A model with the utterance input (``ModelConfig.utterance_features``: one vector per clip, e.g. ComParE_2016
functionals) has a manifest entry ``utterance`` (:class:`UtteranceSpec`: the openSMILE feature set, the level and the
width of the vector) and an ``utterance`` normaliser: the global statistics of the training clips' vectors. A new clip
of a speaker never seen is normalised with those (the data pipeline of cross-validation normalises the vectors per
speaker across that speaker's clips; a single new clip has no such statistics). Such a bundle is format version 2.
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
BUNDLE_VERSION = 2
"""The newest bundle format this library reads; a bundle records the lowest version that reads it (1 without the
utterance input, 2 with it), so bundles without it stay readable by older versions of the library."""
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


@dataclass(frozen=True)
class UtteranceSpec:
    """How the utterance vector of a new clip is computed (``manifest['utterance']``): openSMILE ``feature_set`` at
    ``level`` (``functionals``: one row of statistics of the clip's audio), ``dim`` values wide; it is normalised
    with the bundle's ``utterance`` normaliser (global statistics of the training clips' vectors)."""

    feature_set: str
    level: str = "functionals"
    dim: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry."""
        return {"feature_set": self.feature_set, "level": self.level, "dim": self.dim}

    def check(self, config: Mapping[str, Any], states: Mapping[str, Mapping[str, Any]], where: Path) -> None:
        """Raise :class:`BundleError` naming ``where`` unless the model configuration (plain values) and the
        normaliser states agree with this entry."""
        wanted = (config.get("utterance_features"), config.get("utterance_dim"))
        if wanted != (self.feature_set, self.dim):
            raise BundleError(
                f"{where}: the utterance entry says {self.feature_set} {self.level} ({self.dim} values) but the model "
                f"configuration says utterance_features={wanted[0]!r}, utterance_dim={wanted[1]}"
            )
        if self.level != "functionals":
            raise BundleError(f"{where}: utterance level {self.level!r}: only 'functionals' give one vector per clip")
        if "utterance" not in states:
            raise BundleError(f"{where}: the model has an utterance input but the bundle has no utterance normaliser")


def check_normalisers_fit(states: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any], where: Path) -> None:
    """Raise :class:`BundleError` when a normaliser's width differs from the input it normalises (``config``: the
    ``ModelConfig`` fields as plain values), or when it normalises an input the model does not have."""
    inputs = tuple(config.get("modalities", ())) + (("utterance",) if config.get("utterance_features") else ())
    for name, state in states.items():
        width = config.get(f"{name}_dim")
        if width is None:
            raise BundleError(f"{where}: normaliser for unknown modality {name!r}")
        if name == "utterance" and name not in inputs:
            raise BundleError(f"{where}: an utterance normaliser but the model has no utterance input")
        if name in inputs and len(state["mean"]) != width:
            raise BundleError(
                f"{where}: the {name} normaliser has {len(state['mean'])} features but the model expects {width}"
            )


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
    utterance: UtteranceSpec | None = None
    """How the utterance vector of a new clip is computed, for a model with that input."""


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
    check_normalisers_fit(states, config, path / NORMALISERS_FILE)
    utterance = read_utterance(path, manifest, config, states)
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
        utterance,
    )


def read_utterance(
    path: Path, manifest: Mapping[str, Any], config: Mapping[str, Any], states: Mapping[str, Any]
) -> UtteranceSpec | None:
    """The bundle's :class:`UtteranceSpec` (``None`` for a model without the utterance input), checked against its
    configuration and normalisers."""
    entry = manifest.get("utterance")
    if entry is None:
        if config.get("utterance_features"):
            raise BundleError(
                f"{path / MANIFEST}: the model has an utterance input but the manifest has no utterance entry"
            )
        return None
    spec = read_file(path / MANIFEST, lambda _: UtteranceSpec(**entry))
    spec.check(config, states, path / MANIFEST)
    return spec


def sha256(file: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
