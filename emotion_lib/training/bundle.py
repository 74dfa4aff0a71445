"""A trained model as one folder: the ``.keras`` model with everything needed to feed it new clips.

A bundle (e.g. ``reports/models/synthetic_fusion/``) holds

* ``model.keras``: the trained model (another name when saved with ``model_file``, e.g. ``model_best.keras`` of
  the training command; the manifest names it);
* ``config.json``: its :class:`~emotion_lib.models.config.ModelConfig`;
* ``normalisers.json``: the feature normalisers fitted on the training actors (``{"audio": state, "video": state}``);
* ``model_<mode>.tflite``: optional fixed-window TFLite exports (``float16``, ``int8``, ...);
* ``manifest.json``: what each file is with its sha256 checksum, the feature extraction settings the model
  expects (face backend, audio feature set, frame rate) and free metadata (corpus, protocol, scores).

:func:`save_bundle` writes one, :func:`load_bundle` reads and checks it. Every problem (missing or corrupt
file, checksum mismatch, a model whose inputs do not fit the configuration) is a :class:`BundleError` naming
the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from emotion_lib import __version__
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.models.config import ModelConfig
from emotion_lib.training.export import ModelFileError, expected_shapes, load_model

BUNDLE_FORMAT = "emotion_lib model bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
NORMALISERS_FILE = "normalisers.json"


class BundleError(ModelFileError):
    """A model bundle is missing, incomplete, corrupt, or its model does not fit its configuration."""


@dataclass
class ModelBundle:
    """A loaded model bundle (see :func:`load_bundle`)."""

    path: Path
    model: keras.Model
    config: ModelConfig
    normalisers: dict[str, Normaliser]
    """Fitted normalisers by modality (``audio``, ``video``); empty when the features were not normalised."""
    extraction: ExtractionConfig
    """The feature extraction settings the model expects (face backend, audio feature set, frame rate)."""
    exports: dict[str, Path] = field(default_factory=dict)
    """TFLite exports by mode (``float16``, ``int8``)."""
    metadata: dict[str, Any] = field(default_factory=dict)


def tflite_name(mode: str) -> str:
    """File name of a TFLite export inside a bundle."""
    return f"model_{mode}.tflite"


def is_bundle(path: Path | str) -> bool:
    """True when ``path`` is a folder holding a bundle manifest."""
    return (Path(path) / MANIFEST).is_file()


def save_bundle(
    path: Path | str,
    model: keras.Model,
    config: ModelConfig,
    normalisers: Mapping[str, Normaliser | Mapping[str, Any]],
    extraction: ExtractionConfig,
    exports: Mapping[str, bytes] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_file: str = MODEL_FILE,
) -> Path:
    """Write a model bundle folder at ``path`` and return it.

    Args:
        path: the bundle folder; an existing bundle there is replaced (any other existing folder is an error).
        model: the trained Keras model; its inputs must fit ``config``.
        config: the model's configuration.
        normalisers: fitted :class:`Normaliser` objects or their ``state()`` dicts, by modality
            (what ``load_corpus_sequences`` returns).
        extraction: the feature extraction settings the model was trained on.
        exports: TFLite flatbuffers by mode (``export_tflite_models``).
        metadata: JSON-serialisable facts to keep, e.g. ``{"corpus": ..., "protocol": ...}``.
        model_file: the name of the ``.keras`` file inside the bundle (recorded in the manifest).
    """
    path = Path(path)
    if not model_file.endswith(".keras") or Path(model_file).name != model_file:
        raise ValueError(f"model_file must be a file name ending in .keras, got {model_file!r}")
    check_model_fits(model, config, path / model_file)
    states = {name: n.state() if isinstance(n, Normaliser) else dict(n) for name, n in normalisers.items()}
    check_normalisers_fit(states, config, path / NORMALISERS_FILE)
    if path.exists() and not (is_bundle(path) or (path.is_dir() and not any(path.iterdir()))):
        raise BundleError(f"{path} exists and is not a model bundle: refusing to replace it")
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_files(tmp, model, config, states, extraction, exports or {}, metadata or {}, model_file)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def _write_files(
    folder: Path,
    model: keras.Model,
    config: ModelConfig,
    states: Mapping[str, Any],
    extraction: ExtractionConfig,
    exports: Mapping[str, bytes],
    metadata: Mapping[str, Any],
    model_file: str = MODEL_FILE,
) -> None:
    """Write the bundle's files and its manifest (last) into ``folder``."""
    model.save(folder / model_file)
    config.save(folder / CONFIG_FILE)
    (folder / NORMALISERS_FILE).write_text(json.dumps(states))
    roles = {model_file: "keras model", CONFIG_FILE: "ModelConfig", NORMALISERS_FILE: "feature normalisers"}
    for mode, flatbuffer in exports.items():
        (folder / tflite_name(mode)).write_bytes(flatbuffer)
        roles[tflite_name(mode)] = f"TFLite export ({mode}, one fixed window)"
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "emotion_lib": __version__,
        "files": {name: {"role": role, "sha256": _sha256(folder / name)} for name, role in roles.items()},
        "model": model_file,
        "exports": {mode: tflite_name(mode) for mode in exports},
        "extraction": dataclasses.asdict(extraction),
        "metadata": dict(metadata),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


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


def load_bundle(path: Path | str, compile: bool = False) -> ModelBundle:
    """Read the bundle at ``path``, checking every file's checksum and that the model fits its configuration.

    Raises:
        BundleError: naming the file that is missing, corrupt, altered since saving or inconsistent.
    """
    path = Path(path)
    manifest = read_manifest(path)
    verify_checksums(path, manifest)
    config = _read(path / CONFIG_FILE, ModelConfig.load)
    states = _read(path / NORMALISERS_FILE, lambda p: json.loads(p.read_text()))
    normalisers = _read(path / NORMALISERS_FILE, lambda _: {k: Normaliser.from_state(s) for k, s in states.items()})
    extraction = _read(path / MANIFEST, lambda _: ExtractionConfig(**manifest["extraction"]))
    model_path = path / manifest.get("model", MODEL_FILE)
    try:
        model = load_model(model_path, compile=compile)
    except ModelFileError as error:
        raise BundleError(str(error)) from error
    check_model_fits(model, config, model_path)
    check_normalisers_fit(states, config, path / NORMALISERS_FILE)
    exports = {mode: path / name for mode, name in manifest.get("exports", {}).items()}
    return ModelBundle(path, model, config, normalisers, extraction, exports, manifest.get("metadata", {}))


def verify_checksums(path: Path, manifest: Mapping[str, Any]) -> None:
    """Raise :class:`BundleError` naming the first listed file that is missing or differs from its checksum."""
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"model bundle {path} is incomplete: {file} ({entry.get('role', 'file')}) is missing")
        if _sha256(file) != entry.get("sha256"):
            raise BundleError(f"{file} does not match its checksum in {path / MANIFEST}: changed or corrupt")


def check_model_fits(model: keras.Model, config: ModelConfig, where: Path) -> None:
    """Raise :class:`BundleError` unless the model's inputs are the configuration's modalities and widths."""
    shapes = expected_shapes(model)
    wanted = {name for modality in config.modalities for name in (modality, f"{modality}_mask")}
    if set(shapes) != wanted:
        raise BundleError(
            f"{where}: the model has inputs {sorted(shapes)} but its configuration's modalities "
            f"{list(config.modalities)} need {sorted(wanted)}"
        )
    for modality in config.modalities:
        width = getattr(config, f"{modality}_dim")
        if shapes[modality][-1] != width:
            raise BundleError(
                f"{where}: input {modality!r} has {shapes[modality][-1]} features but the configuration says "
                f"{modality}_dim={width}"
            )


def check_normalisers_fit(states: Mapping[str, Mapping[str, Any]], config: ModelConfig, where: Path) -> None:
    """Raise :class:`BundleError` when a normaliser's width differs from the configuration's feature width."""
    for modality, state in states.items():
        width = getattr(config, f"{modality}_dim", None)
        if width is None:
            raise BundleError(f"{where}: normaliser for unknown modality {modality!r}")
        if modality in config.modalities and len(state["mean"]) != width:
            raise BundleError(
                f"{where}: the {modality} normaliser has {len(state['mean'])} features but the model expects {width}"
            )


def _read(file: Path, reader: Any) -> Any:
    """``reader(file)``, with any parse error turned into a :class:`BundleError` naming ``file``."""
    try:
        return reader(file)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise BundleError(f"cannot read {file}: {type(error).__name__}: {error}") from error


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
