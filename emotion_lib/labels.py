"""The six emotion classes shared by every corpus, and their display colours."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "neutral", "sadness")
"""Class names in model-output order (CREMA-D's six classes)."""

EMOTION_COLOURS: dict[str, str] = {
    "anger": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happiness": "#ffbf00",
    "neutral": "#7f7f7f",
    "sadness": "#1f77b4",
}
"""Hex colour per class, used by plots, the notebook demo and the real-time app."""


def emotion_index(emotion: str) -> int:
    """Return the model-output index of ``emotion``; raise ``ValueError`` for an unknown class."""
    try:
        return EMOTIONS.index(emotion)
    except ValueError:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}") from None


def colour_bgr(emotion: str) -> tuple[int, int, int]:
    """The class colour as an OpenCV BGR tuple."""
    hex_colour = EMOTION_COLOURS[emotion].lstrip("#")
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)
