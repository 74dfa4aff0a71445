"""A model loaded once that answers files: :class:`FilePredictor` and the pretrained model names.

The model is a pretrained name (``voice``, ``face``, ``av``, ``av-branched``: the bundle folders of
:data:`~emotion_lib.paths.PRETRAINED_DIR`), or the path of any model bundle folder, of a file inside one
(``model.keras``, a TFLite export) or of a bare ``.keras`` model. A bundle brings the feature extraction settings
(openSMILE set, face backend, frame rate) and the normalisers fitted on its training actors; the file's features are
extracted with those settings, normalised, padded and masked as in training, and run through the model. A modality
the file lacks is masked (the models are trained with modality dropout). A model with the utterance input
(``ModelConfig.utterance_features``) also gets the openSMILE functionals of the file's whole audio, normalised with the
bundle's global statistics of the training clips' vectors (a single file of an unknown speaker has no statistics of
its own); a file whose voice is left out (silent, no audio track) gets zeros there, i.e. the training mean.

A bundle with a float32 TFLite model (``model.tflite``, see :func:`~emotion_lib.training.bundle.lite_exports`) is
run by the TFLite interpreter, with the bundle's TFLite copy of the face network when it has one: no Keras model is
deserialised, no graph traced and, with the LiteRT runtime installed, TensorFlow is never imported, so a fresh process
answers in a fraction of the time. The probabilities agree with the Keras model to float rounding
(``benchmarks/predict.py --agreement`` measures it on real clips). ``runtime="keras"`` runs the Keras model instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotion_lib.features.manifest import BundleFeatures, ModelFileError, read_bundle_features, read_manifest
from emotion_lib.features.tflite import LiteModel
from emotion_lib.inference.media import KIND_MODALITIES, FileFeatureExtractor, FileFeatures, file_kind
from emotion_lib.inference.results import FilePrediction, Timeline
from emotion_lib.labels import EMOTIONS
from emotion_lib.paths import PRETRAINED_DIR
from emotion_lib.realtime.window import ModelInputError, WindowModel, load_streaming_model

if TYPE_CHECKING:
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.training.bundle import ModelBundle

PRETRAINED_MODELS = {"voice": "the voice", "face": "the face", "av": "the voice + face"}
"""The main pretrained model names and what they read (a missing one names the command that trains it); every other
bundle folder of :data:`~emotion_lib.paths.PRETRAINED_DIR` is a pretrained name too (:func:`pretrained_names`)."""
TRAIN_COMMAND = "python -m emotion_lib train --recipe {name}"
"""The command that writes a pretrained model bundle (named in the error when one is missing)."""
DEFAULT_WINDOW_FRAMES = 10
"""Face frames per timeline window for a model without a bundle configuration (2 s at 5 frames/s)."""
MODALITY_WORDS = {"audio": "a voice", "video": "a face"}
RUNTIMES = ("auto", "tflite", "keras")
"""``auto``: the bundle's TFLite model when it has one, else Keras; ``tflite``: only that; ``keras``: Keras."""


def pretrained_names() -> list[str]:
    """The pretrained model names: :data:`PRETRAINED_MODELS` and every folder of ``PRETRAINED_DIR`` with a bundle."""
    folders = {path.parent.name for path in PRETRAINED_DIR.glob("*/manifest.json") if path.is_file()}
    return [*PRETRAINED_MODELS, *sorted(folders - set(PRETRAINED_MODELS))]


def resolve_model(model: str | Path) -> Path:
    """The path of a model: a pretrained name's bundle folder, else ``model`` itself.

    Raises:
        FileNotFoundError: a pretrained model that has not been trained yet (naming the folder and the command
            that trains it), or a path that does not exist.
    """
    names = pretrained_names()
    if str(model) in names:
        folder = PRETRAINED_DIR / str(model)
        if not (folder / "manifest.json").is_file():
            raise FileNotFoundError(
                f"the pretrained {model!r} model is not there: {folder} holds no model bundle "
                f"(train it with `{TRAIN_COMMAND.format(name=model)}`)"
            )
        return folder
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(
            f"model not found: {path} (give {', '.join(names)} or the path of a model bundle folder)"
        )
    return path


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """Model scores as probabilities summing to 1 (a softmax output is only renormalised)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise ModelInputError(f"the model returned non-finite scores {scores.tolist()}")
    if scores.min() >= 0 and scores.sum() > 0:
        return scores / scores.sum()
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


class FilePredictor:
    """A model with its extraction settings and normalisers, loaded once to answer any number of files.

    Raises (on construction) ``FileNotFoundError`` for a missing model and :class:`ModelInputError` for a model that
    cannot be loaded or whose inputs do not fit the features its extraction settings give.
    """

    def __init__(self, model: str | Path = "av", runtime: str = "auto") -> None:
        from emotion_lib.features.store import ExtractionConfig

        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.name = str(model)
        self.path = resolve_model(model)
        self.runtime = runtime
        self.bundle: ModelBundle | BundleFeatures | None = self._lite_bundle(runtime)
        self.engine = "tflite"
        """What runs the model: ``tflite`` (the bundle's ``model.tflite``) or ``keras`` (any other model file)."""
        if self.bundle is None:
            self.window_model, self.bundle = load_streaming_model(self.path)
            self.engine = "tflite" if self.path.suffix == ".tflite" else "keras"
        self.modalities = tuple(m for m in ("audio", "video") if self.window_model.feature_dim(m) is not None)
        self.extraction: ExtractionConfig = self.bundle.extraction if self.bundle else ExtractionConfig()
        self.normalisers: dict[str, Any] = dict(self.bundle.normalisers) if self.bundle else {}
        self.notes: tuple[str, ...] = ()
        if self.bundle is None:
            self.notes = (f"{self.path} is not a model bundle: default extraction settings, features not normalised",)
        face_network = self.bundle.face_network if isinstance(self.bundle, BundleFeatures) else {}
        utterance = self.bundle.utterance if self.bundle else None
        self.features = FileFeatureExtractor(self.extraction, self.modalities, face_network, utterance)
        self.notes += tuple(self.features.notes)
        self._check_fits()

    def _lite_bundle(self, runtime: str) -> BundleFeatures | None:
        """The bundle's feature side with :attr:`window_model` on its TFLite model, or ``None`` for the Keras route
        (``runtime='keras'``, or ``'auto'`` and no TFLite model)."""
        if runtime == "keras" or not (self.path.is_dir() and (self.path / "manifest.json").is_file()):
            if runtime == "tflite":
                raise ModelInputError(f"{self.path} is not a model bundle: no TFLite model to run")
            return None
        try:
            manifest = read_manifest(self.path)
            if "lite_model" not in manifest:
                if runtime == "tflite":
                    raise ModelInputError(
                        f"{self.path} has no TFLite model (model.tflite): add it with "
                        "emotion_lib.training.bundle.add_lite_exports, or use runtime='keras'"
                    )
                return None
            bundle = read_bundle_features(self.path, manifest)
            lite = LiteModel(bundle.lite_model)
        except ModelFileError as error:  # BundleError included
            message = str(error)
            raise ModelInputError(
                f"could not load model{'' if str(self.path) in message else f' {self.path}'}: {message}"
            ) from error
        self.window_model = WindowModel(lite, input_shapes={name: shape[1:] for name, shape in lite.shapes.items()})
        for modality in ("audio", "video", "utterance"):
            width, expected = self.window_model.feature_dim(modality), bundle.config.get(f"{modality}_dim")
            if width is not None and width != expected:
                raise ModelInputError(
                    f"{bundle.lite_model}: input {modality!r} has {width} features but the configuration says "
                    f"{modality}_dim={expected}"
                )
        return bundle

    def _check_fits(self) -> None:
        if self.window_model.feature_dim("utterance") is not None and self.features.utterance is None:
            raise ModelInputError(
                f"{self.path}: the model has an utterance input but no bundle manifest says how to compute it "
                "(give the model's bundle folder)"
            )
        for modality, dim in self.features.dims().items():
            expected = self.window_model.feature_dim(modality)
            if expected != dim:
                extractor = self.features.utterance if modality == "utterance" else self.features.audio
                source = (
                    f"the {self.extraction.video_backend!r} face backend"
                    if modality == "video"
                    else f"openSMILE {extractor.feature_set} {extractor.level}"
                )
                raise ModelInputError(
                    f"{self.path}: the model's {modality} input has {expected} features but {source} "
                    f"(its extraction settings) gives {dim}: the model does not fit these features"
                )

    @property
    def window_frames(self) -> int:
        """Face frames per timeline window: the model's real-time window."""
        if isinstance(self.bundle, BundleFeatures):
            return int(self.bundle.config["window_video_frames"])
        return self.bundle.config.window_video_frames if self.bundle else DEFAULT_WINDOW_FRAMES

    def predict_file(self, path: Path | str, timeline: bool = False) -> FilePrediction:
        """The prediction for one file; a file that cannot be answered gives a result with ``error`` set."""
        notes: list[str] = list(self.notes)
        try:
            kind = file_kind(path)
            self._check_kind(path, kind)
            features = self.features.extract(path)
            notes += features.notes
            if not features.modalities:
                raise ModelInputError("; ".join(features.notes) or f"{path}: nothing to predict from")
            probabilities = self.probabilities(features)
            series = None
            if timeline and kind == "image":
                notes.append(f"{path}: a still image has no timeline")
            elif timeline:
                series = self.timeline(path, kind)
        except Exception as error:  # one bad file never stops the others: it is answered with its reason
            return FilePrediction(str(path), str(self.path), error=_reason(error, path), notes=tuple(notes))
        return FilePrediction(
            str(path),
            str(self.path),
            dict(zip(EMOTIONS, map(float, probabilities))),
            features.modalities,
            series,
            notes=tuple(notes),
        )

    def _check_kind(self, path: Path | str, kind: str) -> None:
        if not set(self.modalities) & set(KIND_MODALITIES[kind]):
            needs = " or ".join(MODALITY_WORDS[m] for m in self.modalities)
            raise ModelInputError(
                f"{path}: the model {self.name} reads {needs}, which an {kind} file does not have "
                f"(give it {'a video or an image' if self.modalities == ('video',) else 'audio or a video'})"
            )

    def model_inputs(self, features: FileFeatures) -> dict[str, np.ndarray]:
        """The model's batch of one: normalised, masked (a frame without a face is zeros), cut or padded to a fixed
        window for a fixed-window export; a modality the file lacks is one masked step."""
        inputs: dict[str, np.ndarray] = {}
        for modality in self.modalities:
            values = getattr(features, modality)
            dim = self.window_model.feature_dim(modality)
            if values is None or len(values) == 0:
                inputs[modality], inputs[f"{modality}_mask"] = (
                    np.zeros((1, 1, dim), np.float32),
                    np.zeros((1, 1), np.float32),
                )
                continue
            mask = features.video_mask if modality == "video" else None
            if modality in self.normalisers:
                values = self.normalisers[modality].transform(values, None, mask)
            valid = np.ones(len(values), bool) if mask is None else np.asarray(mask, bool)
            inputs[modality] = np.where(valid[:, None], values, 0.0).astype(np.float32)[None]
            inputs[f"{modality}_mask"] = valid.astype(np.float32)[None]
        if self.window_model.feature_dim("utterance") is not None:
            inputs["utterance"] = self.utterance_input(features.utterance)
        fixed = {m: self.window_model.time_steps(m) for m in self.modalities}
        if any(steps is not None for steps in fixed.values()):  # a fixed-window export (TFLite): cut or pad
            from emotion_lib.sequences.data import fixed_window

            lengths = {m: steps or inputs[m].shape[1] for m, steps in fixed.items()}
            inputs = fixed_window(inputs, lengths.get("audio", 1), lengths.get("video", 1))
        return inputs

    def utterance_input(self, vector: np.ndarray | None) -> np.ndarray:
        """The utterance input ``(1, D)``: ``vector`` normalised with the bundle's training statistics, or zeros (the
        training mean) when the voice was left out."""
        if vector is None:
            return np.zeros((1, self.window_model.feature_dim("utterance")), np.float32)
        return self.normalisers["utterance"].transform(np.asarray(vector)[None])

    def probabilities(self, features: FileFeatures) -> np.ndarray:
        """Class probabilities of a file's features, in :data:`~emotion_lib.labels.EMOTIONS` order."""
        return as_probabilities(self.window_model(self.model_inputs(features)))

    def timeline(self, path: Path | str, kind: str) -> Timeline:
        """Probabilities over time: the clip replayed through the streaming predictor (one real-time window)."""
        from emotion_lib.inference.timeline import clip_timeline

        return clip_timeline(self, path, kind)


def _reason(error: Exception, path: Path | str) -> str:
    """An error message that names the file once."""
    message = str(error) or type(error).__name__
    if not isinstance(error, (ValueError, OSError)):
        message = f"{type(error).__name__}: {message}"
    return message if str(path) in message else f"{path}: {message}"
