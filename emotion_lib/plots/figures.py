"""Saving figures where the reports live."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from emotion_lib import paths


def save_figure(figure: plt.Figure, name: str, dpi: int = 110) -> Path:
    """Save ``figure`` as ``<REPORTS_DIR>/figures/<name>.png`` and return the path."""
    path = paths.REPORTS_DIR / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
