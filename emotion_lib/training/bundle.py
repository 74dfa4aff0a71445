"""A trained model as one folder: the ``.keras`` model with everything needed to feed it new clips.

A bundle (e.g. ``reports/models/synthetic_fusion/``) holds

* ``model.keras``: the trained model (another name when saved with ``model_file``, e.g. ``model_best.keras`` of
  the training command; the manifest names it);
* ``config.json``: its :class:`~emotion_lib.models.config.ModelConfig`;
* ``normalisers.json``: the feature normalisers fitted on the training actors (``{"audio": state, "video": state}``;
  a model with the utterance input also has ``"utterance"``: the global statistics of the training clips' vectors);
* ``model_<mode>.tflite``: optional fixed-window TFLite exports (``float16``, ``int8``, ...);
* ``model.tflite``: the same model in float32 TFLite with a free time axis (any clip length; what ``predict`` runs,
  without TensorFlow), and ``face_<backend>.tflite``: the face backend's network in TFLite when the backend has
  one to export (``fer``), with the checksum of the network it was converted from;
* ``manifest.json``: what each file is with its sha256 checksum, the feature extraction settings the model
  expects (face backend, audio feature set, frame rate), for a model with the utterance input how its vector is
  computed (``utterance``: :class:`~emotion_lib.features.manifest.UtteranceSpec`) and free metadata (corpus,
  protocol, scores).

:func:`save_bundle` writes one, :func:`load_bundle` reads and checks it, :func:`add_lite_exports` adds the TFLite
files to a bundle saved without them. Every problem (missing or corrupt file, checksum mismatch, a model whose inputs
do not fit the configuration) is a :class:`BundleError` naming the file. The reading that needs no model
(manifest, checksums, normalisers, extraction settings) is :mod:`emotion_lib.features.manifest`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import keras

from emotion_lib import __version__
from emotion_lib.features.faces.registry import face_backend_spec, get_face_backend
from emotion_lib.features.manifest import (  # noqa: F401  (BUNDLE_VERSION, read_manifest: this module's API too)
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    CONFIG_FILE,
    LITE_MODEL_FILE,
    MANIFEST,
    NORMALISERS_FILE,
    BundleError,
    UtteranceSpec,
    face_network_file,
    read_bundle_features,
    read_file,
    read_manifest,
    sha256,
    verify_checksums,
)
from emotion_lib.features.manifest import check_normalisers_fit as check_state_widths
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.models.config import ModelConfig
from emotion_lib.training.export import ModelFileError, expected_shapes, load_model, to_tflite_any_length
from emotion_lib.utils import atomic_write_bytes

MODEL_FILE = "model.keras"


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
    lite_model: Path | None = None
    """The float32 any-length TFLite model (``model.tflite``), when the bundle has one."""
    face_network: dict[str, Any] = field(default_factory=dict)
    """The TFLite face network (``file``, ``backend``, ``options``, ``source_sha256``), when there is one."""
    utterance: UtteranceSpec | None = None
    """How the utterance vector of a new clip is computed, for a model with that input."""


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
    lite: bool = True,
) -> Path:
    """Write a model bundle folder at ``path`` and return it.

    Args:
        path: the bundle folder; an existing bundle there is replaced (any other existing folder is an error).
        model: the trained Keras model; its inputs must fit ``config``.
        config: the model's configuration.
        normalisers: fitted :class:`Normaliser` objects or their ``state()`` dicts, by modality
            (what ``load_corpus_sequences`` returns); a model with the utterance input needs ``"utterance"``, a
            global normaliser fitted on the training clips' vectors (what a new clip of an unknown speaker gets).
        extraction: the feature extraction settings the model was trained on.
        exports: TFLite flatbuffers by mode (``export_tflite_models``).
        metadata: JSON-serialisable facts to keep, e.g. ``{"corpus": ..., "protocol": ...}``.
        model_file: the name of the ``.keras`` file inside the bundle (recorded in the manifest).
        lite: also write the TFLite files ``predict`` runs without TensorFlow (:func:`lite_exports`).
    """
    path = Path(path)
    if not model_file.endswith(".keras") or Path(model_file).name != model_file:
        raise ValueError(f"model_file must be a file name ending in .keras, got {model_file!r}")
    if config.utterance_reducer:
        raise BundleError(
            f"{path}: a model with utterance_reducer={config.utterance_reducer!r} cannot be bundled (its reducer is "
            "fitted inside cross-validation folds and not saved); train it without the reducer to ship it"
        )
    check_model_fits(model, config, path / model_file)
    states = {name: n.state() if isinstance(n, Normaliser) else dict(n) for name, n in normalisers.items()}
    check_normalisers_fit(states, config, path / NORMALISERS_FILE)
    if config.utterance_features:
        utterance_spec(config).check(dataclasses.asdict(config), states, path / NORMALISERS_FILE)
    if path.exists() and not (is_bundle(path) or (path.is_dir() and not any(path.iterdir()))):
        raise BundleError(f"{path} exists and is not a model bundle: refusing to replace it")
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_files(tmp, model, config, states, extraction, exports or {}, metadata or {}, model_file)
        if lite:
            _add_files(tmp, *lite_exports(model, extraction))
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
        "version": 2 if config.utterance_features else 1,
        "emotion_lib": __version__,
        "files": {name: {"role": role, "sha256": sha256(folder / name)} for name, role in roles.items()},
        "model": model_file,
        "exports": {mode: tflite_name(mode) for mode in exports},
        "extraction": dataclasses.asdict(extraction),
        "metadata": dict(metadata),
    }
    if config.utterance_features:
        manifest["utterance"] = utterance_spec(config).to_dict()
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def utterance_spec(config: ModelConfig) -> UtteranceSpec:
    """The manifest's utterance entry of a model with the utterance input: ``config.utterance_features``
    functionals, ``config.utterance_dim`` wide (what the data pipeline feeds it)."""
    return UtteranceSpec(config.utterance_features, "functionals", config.utterance_dim)


def lite_exports(model: keras.Model, extraction: ExtractionConfig) -> tuple[dict[str, tuple[bytes, str]], dict]:
    """The TFLite files that let ``predict`` run without TensorFlow, and their manifest entries.

    ``model.tflite`` is ``model`` in float32 with a free time axis (:func:`to_tflite_any_length`: any clip length,
    agreeing with Keras to float rounding). When the face backend of ``extraction`` has a network to export
    (a ``network()`` method, e.g. ``fer``), ``face_<backend>.tflite`` is its TFLite copy, recorded with the checksum of
    the network file it was converted from (``predict`` uses it only while the installed network is that file).

    Returns:
        ``({file name: (flatbuffer, role)}, {manifest key: entry})``.
    """
    files = {LITE_MODEL_FILE: (to_tflite_any_length(model), "TFLite model (float32, any clip length)")}
    entries: dict[str, Any] = {"lite_model": LITE_MODEL_FILE}
    name = extraction.video_backend
    if name and hasattr(face_backend_spec(name).backend, "network"):
        backend = face_backend_spec(name).backend
        options = tuple(sorted(dict(extraction.backend_options).items()))
        entry = {
            "file": face_network_file(name),
            "backend": name,
            "options": dict(options),
            "source": backend.network_name(),
            "source_sha256": sha256(backend.network_source()),
        }
        flatbuffer = _face_network(name, options, entry["source_sha256"])
        files[entry["file"]] = (flatbuffer, f"TFLite {name} face network")
        entries["face_network"] = entry
    return files, entries


@lru_cache(maxsize=4)
def _face_network(name: str, options: tuple[tuple[str, Any], ...], source_sha256: str) -> bytes:
    """The TFLite copy of a face backend's network, converted once per process and network file (``source_sha256``
    keys the cache; the copy does not depend on the emotion model)."""
    return to_tflite_any_length(get_face_backend(name, **dict(options)).network(), batch=None)


def _add_files(folder: Path, files: Mapping[str, tuple[bytes, str]], entries: Mapping[str, Any]) -> None:
    """Write ``files`` into the bundle ``folder`` and list them (checksums) and ``entries`` in its manifest."""
    manifest = read_manifest(folder)
    for name, (flatbuffer, role) in files.items():
        atomic_write_bytes(folder / name, flatbuffer)
        manifest["files"][name] = {"role": role, "sha256": sha256(folder / name)}
    manifest.update(entries)
    atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())


def add_lite_exports(path: Path | str) -> Path:
    """Add the TFLite files of :func:`lite_exports` to the bundle at ``path``, converted from its Keras model
    (checked first; the other files are left as they are, the manifest lists the new ones with their checksums)."""
    bundle = load_bundle(path)
    _add_files(bundle.path, *lite_exports(bundle.model, bundle.extraction))
    return bundle.path


def load_bundle(path: Path | str, compile: bool = False) -> ModelBundle:
    """Read the bundle at ``path``, checking every file's checksum and that the model fits its configuration.

    Raises:
        BundleError: naming the file that is missing, corrupt, altered since saving or inconsistent.
    """
    path = Path(path)
    manifest = read_manifest(path)
    features = read_bundle_features(path, manifest)
    config = read_file(path / CONFIG_FILE, ModelConfig.load)
    model_path = path / manifest.get("model", MODEL_FILE)
    try:
        model = load_model(model_path, compile=compile)
    except ModelFileError as error:
        raise BundleError(str(error)) from error
    check_model_fits(model, config, model_path)
    states = {name: normaliser.state() for name, normaliser in features.normalisers.items()}
    check_normalisers_fit(states, config, path / NORMALISERS_FILE)
    exports = {mode: path / name for mode, name in manifest.get("exports", {}).items()}
    return ModelBundle(
        path,
        model,
        config,
        features.normalisers,
        features.extraction,
        exports,
        features.metadata,
        features.lite_model,
        features.face_network,
        features.utterance,
    )


def check_model_fits(model: keras.Model, config: ModelConfig, where: Path) -> None:
    """Raise :class:`BundleError` unless the model's inputs are the configuration's input groups and widths."""
    shapes = expected_shapes(model)
    wanted = {name for modality in config.modalities for name in (modality, f"{modality}_mask")}
    wanted |= {"utterance"} if config.utterance_features else set()
    if set(shapes) != wanted:
        raise BundleError(
            f"{where}: the model has inputs {sorted(shapes)} but its configuration's input groups "
            f"{list(config.input_groups)} need {sorted(wanted)}"
        )
    for modality in config.input_groups:
        width = getattr(config, f"{modality}_dim")
        if shapes[modality][-1] != width:
            raise BundleError(
                f"{where}: input {modality!r} has {shapes[modality][-1]} features but the configuration says "
                f"{modality}_dim={width}"
            )


def check_normalisers_fit(states: Mapping[str, Mapping[str, Any]], config: ModelConfig, where: Path) -> None:
    """Raise :class:`BundleError` when a normaliser's width differs from the configuration's feature width, or when
    it normalises an input the model does not have (utterance)."""
    check_state_widths(states, dataclasses.asdict(config), where)
