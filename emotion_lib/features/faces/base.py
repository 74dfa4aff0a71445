"""What every face backend shares: aligned chips in, ``(embeddings, mask)`` out, and the unavailable-backend error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emotion_lib.features.video import FaceAligner


class BackendUnavailable(RuntimeError):
    """A face backend cannot run here (missing package or weights); the message says how to fix it."""


class FaceBackend:
    """Common frame -> (embedding, mask) logic; subclasses embed a batch of aligned RGB chips.

    A subclass sets ``name``, ``dim``, ``chip_size`` and ``padding``, implements :meth:`_embed_chips`, and
    overrides :meth:`check` (cheap availability test), :meth:`_model_config` (its part of :meth:`config`) and
    :meth:`key_options` (how its options enter the feature cache key) where needed.
    """

    name = "base"
    dim = 0
    chip_size, padding = 150, 0.25

    def __init__(self, detect_width: int = 320, upsample: int = 1, coarse_first: bool = True) -> None:
        self.aligner = FaceAligner(self.chip_size, self.padding, detect_width, upsample, coarse_first)

    @classmethod
    def check(cls, **options) -> None:
        """Raise :class:`BackendUnavailable` if this backend cannot run here, without loading any model."""

    @classmethod
    def key_options(cls, options: dict) -> dict:
        """``options`` as they enter the feature cache key (e.g. a weights file by its name, not its folder)."""
        return options

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
