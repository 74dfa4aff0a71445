"""The ``facenet`` face backend: facenet-pytorch InceptionResnetV1 (vggface2, 512-d); an optional extra (torch +
torchvision)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from emotion_lib.features.faces.base import BackendUnavailable, FaceBackend

FACENET_INSTALL_HINT = (
    "install the optional extra with `make setup-facenet` (torch==2.14.1, torchvision==0.29.1, "
    "then facenet-pytorch==2.6.0 with --no-deps)"
)


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
