"""Feature normalisation whose statistics come from the training split only.

``Normaliser('global')`` standardises every frame with the mean and standard deviation of all training frames.
``Normaliser('speaker')`` standardises each speaker with their own statistics: training speakers get theirs in
:meth:`Normaliser.fit`; a speaker never seen in training (every test speaker in a speaker-independent split) is
normalised with the global training statistics unless :meth:`Normaliser.adapt` is given that speaker's own
*unlabelled* features (label-free speaker adaptation, which must be stated when reporting results).
Masked frames (video frames without a face) are left out of every statistic and come out as zeros.
:func:`normalise_utterances` does the same for one vector per clip (functionals), per speaker across clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MODES = ("global", "speaker")


class Normaliser:
    """Mean/standard-deviation normalisation of ``(T, D)`` feature sequences, global or per speaker."""

    def __init__(self, mode: str = "global", eps: float = 1e-6) -> None:
        if mode not in MODES:
            raise ValueError(f"normalisation mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.eps = mode, eps
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self.speaker_stats_: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _stats(
        self, sequences: Sequence[np.ndarray], masks: Sequence[np.ndarray | None] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        masks = masks if masks is not None else [None] * len(sequences)
        rows = [
            np.asarray(x, dtype=np.float64) if m is None else np.asarray(x, dtype=np.float64)[np.asarray(m, bool)]
            for x, m in zip(sequences, masks)
        ]
        rows = [r for r in rows if len(r)]
        if not rows:
            raise ValueError("no unmasked frames to compute normalisation statistics from")
        rows = np.concatenate(rows, axis=0)
        return rows.mean(axis=0), np.maximum(rows.std(axis=0), self.eps)

    def fit(
        self,
        sequences: Sequence[np.ndarray],
        speakers: Sequence[str] | None = None,
        masks: Sequence[np.ndarray | None] | None = None,
    ) -> Normaliser:
        """Compute statistics from the TRAINING sequences (and their speakers in ``'speaker'`` mode)."""
        if not len(sequences):
            raise ValueError("cannot fit a Normaliser on zero sequences")
        self.mean_, self.std_ = self._stats(sequences, masks)
        self.speaker_stats_ = {}
        if self.mode == "speaker":
            if speakers is None or len(speakers) != len(sequences):
                raise ValueError("mode='speaker' needs one speaker id per sequence")
            self.adapt(sequences, speakers, masks)
        return self

    def adapt(
        self, sequences: Sequence[np.ndarray], speakers: Sequence[str], masks: Sequence[np.ndarray | None] | None = None
    ) -> Normaliser:
        """Add per-speaker statistics from unlabelled sequences (``'speaker'`` mode only)."""
        if self.mode != "speaker":
            raise ValueError("adapt() only applies to mode='speaker'")
        masks = list(masks) if masks is not None else [None] * len(sequences)
        for speaker in dict.fromkeys(speakers):
            chosen = [i for i, s in enumerate(speakers) if s == speaker]
            self.speaker_stats_[speaker] = self._stats([sequences[i] for i in chosen], [masks[i] for i in chosen])
        return self

    def transform(self, x: np.ndarray, speaker: str | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Normalised float32 copy of ``x`` ``(T, D)``; rows where ``mask`` is False become zeros."""
        if self.mean_ is None:
            raise RuntimeError("Normaliser is not fitted; call fit() on the training sequences first")
        mean, std = (
            self.speaker_stats_.get(speaker, (self.mean_, self.std_))
            if self.mode == "speaker"
            else (self.mean_, self.std_)
        )
        out = ((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32)
        if mask is not None:
            out[~np.asarray(mask, dtype=bool)] = 0.0
        return out

    def state(self) -> dict:
        """JSON-serialisable statistics (for saving next to a trained model)."""
        if self.mean_ is None:
            raise RuntimeError("Normaliser is not fitted")
        return {
            "mode": self.mode,
            "eps": self.eps,
            "mean": self.mean_.tolist(),
            "std": self.std_.tolist(),
            "speakers": {s: [m.tolist(), d.tolist()] for s, (m, d) in self.speaker_stats_.items()},
        }

    @classmethod
    def from_state(cls, state: dict) -> Normaliser:
        """Rebuild a fitted Normaliser from :meth:`state`."""
        normaliser = cls(state["mode"], state["eps"])
        normaliser.mean_, normaliser.std_ = np.asarray(state["mean"]), np.asarray(state["std"])
        normaliser.speaker_stats_ = {s: (np.asarray(m), np.asarray(d)) for s, (m, d) in state["speakers"].items()}
        return normaliser


def normalise_utterances(
    vectors: np.ndarray,
    speakers: Sequence[str],
    fit_rows: np.ndarray | None = None,
    mode: str = "speaker",
    min_clips: int = 2,
) -> np.ndarray:
    """Standardise per-clip utterance vectors ``(n, D)`` column by column, without labels.

    ``mode='speaker'``: each speaker's clips with that speaker's own mean and standard deviation across their clips
    (the normalisation the classical baselines apply to functionals); a speaker with fewer than ``min_clips`` clips
    gets the global statistics of the ``fit_rows`` clips (default all; the training clips in a CV fold).
    ``mode='global'``: every clip with those global statistics. Returns float32 ``(n, D)``.
    """
    if mode not in MODES:
        raise ValueError(f"normalisation mode must be one of {', '.join(MODES)}, got {mode!r}")
    vectors = np.asarray(vectors, dtype=np.float64)
    speakers = np.asarray([str(s) for s in speakers])
    if vectors.ndim != 2 or len(speakers) != len(vectors):
        raise ValueError(f"need one speaker per row of a (clips, features) array: {len(speakers)}, {vectors.shape}")
    fit = np.arange(len(vectors)) if fit_rows is None else np.flatnonzero(fit_rows)
    out = Normaliser("global").fit([vectors[fit]]).transform(vectors)
    if mode == "speaker":
        for speaker in dict.fromkeys(speakers):
            rows = np.flatnonzero(speakers == speaker)
            if len(rows) >= min_clips:
                out[rows] = Normaliser("global").fit([vectors[rows]]).transform(vectors[rows])
    return out
