"""The answer for one file (:class:`FilePrediction`) and the table, JSON and CSV forms of a list of answers."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotion_lib.labels import EMOTIONS


@dataclass(frozen=True)
class Timeline:
    """Class probabilities over time: one row per update of a sliding window over the clip."""

    times: np.ndarray
    """``(T,)`` seconds from the start of the file (the end of each window)."""
    probabilities: np.ndarray
    """``(T, 6)`` probabilities in :data:`~emotion_lib.labels.EMOTIONS` order."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "times": [round(float(t), 3) for t in self.times],
            "probabilities": {
                emotion: [round(float(p), 6) for p in self.probabilities[:, i]] for i, emotion in enumerate(EMOTIONS)
            },
        }


@dataclass(frozen=True)
class FilePrediction:
    """What emotion is in one file: class probabilities, the label and the modalities used, or why there is none."""

    path: str
    model: str
    """The model folder (or file) that answered."""
    probabilities: dict[str, float] = field(default_factory=dict)
    """Probability per emotion in :data:`~emotion_lib.labels.EMOTIONS` order; empty when ``error`` is set."""
    modalities: tuple[str, ...] = ()
    """The inputs used: ``("audio",)``, ``("video",)`` or both."""
    timeline: Timeline | None = None
    error: str = ""
    """Why the file could not be answered (names the file); empty on success."""
    notes: tuple[str, ...] = ()
    """What was left out and why (no audio track, silence, no face), media warnings."""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def label(self) -> str | None:
        """The most probable emotion, ``None`` on error."""
        return max(self.probabilities, key=self.probabilities.__getitem__) if self.probabilities else None

    @property
    def confidence(self) -> float | None:
        """The probability of :attr:`label`, ``None`` on error."""
        return max(self.probabilities.values()) if self.probabilities else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the ``--json`` output of one file)."""
        return {
            "path": self.path,
            "model": self.model,
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 6),
            "probabilities": {emotion: round(p, 6) for emotion, p in self.probabilities.items()},
            "modalities": list(self.modalities),
            "timeline": None if self.timeline is None else self.timeline.to_dict(),
            "error": self.error,
            "notes": list(self.notes),
        }


def to_json(results: Sequence[FilePrediction]) -> str:
    """The results as a JSON list (one object per file, see :meth:`FilePrediction.to_dict`)."""
    return json.dumps([result.to_dict() for result in results], indent=2)


CSV_COLUMNS = ("path", "time", "label", "confidence", *EMOTIONS, "modalities", "error", "notes")


def to_csv(results: Sequence[FilePrediction]) -> str:
    """The results as CSV: one row per file (``time`` empty) and, with a timeline, one row per time step."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in results:
        rows = [("", result.probabilities)]
        if result.timeline is not None:
            rows += [
                (f"{t:.3f}", dict(zip(EMOTIONS, map(float, p))))
                for t, p in zip(result.timeline.times, result.timeline.probabilities)
            ]
        for time, probabilities in rows:
            label = max(probabilities, key=probabilities.__getitem__) if probabilities else ""
            values = [f"{probabilities[e]:.6f}" if probabilities else "" for e in EMOTIONS]
            confidence = f"{probabilities[label]:.6f}" if probabilities else ""
            modalities = "+".join(result.modalities)
            writer.writerow(
                [result.path, time, label, confidence, *values, modalities, result.error, " | ".join(result.notes)]
            )
    return out.getvalue()


def to_table(results: Sequence[FilePrediction]) -> str:
    """A readable table: one line per file (label, confidence, modalities, every probability), then the errors,
    notes and timelines."""
    short = [emotion[:4] for emotion in EMOTIONS]
    width = max([len("file")] + [len(r.path) for r in results])
    lines = [f"{'file':<{width}}  {'emotion':<10} {'conf':>5}  {'used':<11} " + " ".join(f"{s:>5}" for s in short)]
    for result in results:
        if not result.ok:
            lines.append(f"{result.path:<{width}}  {'-':<10} {'-':>5}  {'-':<11} error (below)")
            continue
        probs = " ".join(f"{result.probabilities[e]:5.2f}" for e in EMOTIONS)
        used = "+".join(result.modalities)
        lines.append(f"{result.path:<{width}}  {result.label:<10} {result.confidence:5.2f}  {used:<11} {probs}")
    for result in results:
        lines += [f"error: {result.error}"] if result.error else []
        lines += [f"note: {note}" for note in result.notes]
        if result.timeline is not None:
            lines.append(f"timeline of {result.path} (s: emotion confidence):")
            lines += [
                f"  {t:6.2f}: {EMOTIONS[int(np.argmax(p))]:<10} {float(np.max(p)):.2f}"
                for t, p in zip(result.timeline.times, result.timeline.probabilities)
            ]
    return "\n".join(lines)
