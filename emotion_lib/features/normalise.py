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


class RunningMoments:
    """Count, mean and summed squared deviations of feature rows, merged one block of rows at a time in float64
    (Chan, Golub and LeVeque's pairwise update), so the statistics of many sequences need no concatenation."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, rows: np.ndarray) -> None:
        """Merge the rows ``(n, D)`` of one block (no rows: nothing changes)."""
        rows = np.asarray(rows, dtype=np.float64)
        if not len(rows):
            return
        n, mean = len(rows), rows.mean(axis=0)
        m2 = np.square(rows - mean).sum(axis=0)
        if self.count == 0:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + np.square(delta) * (self.count * n / total)
        self.count = total

    def stats(self, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, standard deviation floored at eps)`` of every row merged, as :class:`Normaliser` uses them."""
        if not self.count:
            raise ValueError("no unmasked frames to compute normalisation statistics from")
        return self.mean, np.maximum(np.sqrt(self.m2 / self.count), eps)


class StreamingFit:
    """Fits a :class:`Normaliser` one training sequence at a time, holding only running moments: one set for all
    frames and, in ``'speaker'`` mode, one per speaker. Gives :meth:`Normaliser.fit`'s statistics up to float
    rounding without holding the sequences."""

    def __init__(self, mode: str = "global", eps: float = 1e-6) -> None:
        self.template = Normaliser(mode, eps)
        self.total = RunningMoments()
        self.speakers: dict[str, RunningMoments] = {}
        self.sequences = 0

    def add(self, x: np.ndarray, speaker: str | None = None, mask: np.ndarray | None = None) -> None:
        """Merge one sequence ``(T, D)`` (its rows where ``mask`` is True) spoken by ``speaker``."""
        rows = np.asarray(x, dtype=np.float64)
        rows = rows if mask is None else rows[np.asarray(mask, bool)]
        self.total.add(rows)
        if self.template.mode == "speaker":
            if speaker is None:
                raise ValueError("mode='speaker' needs one speaker id per sequence")
            self.speakers.setdefault(speaker, RunningMoments()).add(rows)
        self.sequences += 1

    def normaliser(self) -> Normaliser:
        """The fitted :class:`Normaliser`."""
        if not self.sequences:
            raise ValueError("cannot fit a Normaliser on zero sequences")
        fitted = Normaliser(self.template.mode, self.template.eps)
        fitted.mean_, fitted.std_ = self.total.stats(fitted.eps)
        fitted.speaker_stats_ = {speaker: moments.stats(fitted.eps) for speaker, moments in self.speakers.items()}
        return fitted


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
