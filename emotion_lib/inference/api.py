"""``predict``: what emotion is in these files? One :class:`~emotion_lib.inference.results.FilePrediction` per file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from emotion_lib.inference.predictor import FilePredictor, resolve_model
from emotion_lib.inference.results import FilePrediction


def _stamp(path: Path) -> int:
    """Changes when the model at ``path`` is saved again (its manifest, or the file itself)."""
    manifest = path / "manifest.json"
    return (manifest if manifest.is_file() else path).stat().st_mtime_ns


@lru_cache(maxsize=2)
def _cached(name: str, resolved: str, stamp: int, runtime: str) -> FilePredictor:
    return FilePredictor(name, runtime)


def load_predictor(model: str | Path = "av", cache: bool = True, runtime: str = "auto") -> FilePredictor:
    """The :class:`FilePredictor` of ``model``; with ``cache`` the last two models loaded are kept (a model saved
    again since is loaded again), so repeated calls do not pay the model load. ``runtime``: ``auto`` (the bundle's
    TFLite model when it has one), ``tflite`` or ``keras`` (see :class:`FilePredictor`)."""
    if not cache:
        return FilePredictor(model, runtime)
    path = resolve_model(model)
    return _cached(str(model), str(path.resolve()), _stamp(path), runtime)


def predict(
    path_or_paths: str | os.PathLike | Iterable[str | os.PathLike],
    model: str | Path | FilePredictor = "av",
    timeline: bool = False,
    cache: bool = True,
) -> FilePrediction | list[FilePrediction]:
    """What emotion is in a file (or in each of several files)?

    Args:
        path_or_paths: one file or several: audio (WAV, FLAC, MP3), video (MP4, FLV, ...; a video without an audio
            track gives the face alone) or a still image with one face (PNG, JPG).
        model: a pretrained name (``"voice"``, ``"face"``, ``"av"``, ``"av-branched"``: any bundle folder of
            ``models/``), the path of a model bundle folder or ``.keras`` file, or a loaded :class:`FilePredictor`.
        timeline: also give the probabilities over time (a sliding real-time window over the clip).
        cache: keep the loaded model for the next call.

    Returns:
        One :class:`FilePrediction` for one path, else a list in the order of ``path_or_paths``. A file that cannot
        be answered (missing, unreadable, wrong format, silent, no face, a kind the model cannot read) gives a
        result with ``error`` naming the file; the other files are still answered.

    Raises:
        FileNotFoundError: the model is missing (the message names the command that trains a pretrained one).
        emotion_lib.realtime.ModelInputError: the model cannot be loaded or does not fit its features.
    """
    single = isinstance(path_or_paths, (str, os.PathLike))
    paths = [path_or_paths] if single else list(path_or_paths)
    predictor = model if isinstance(model, FilePredictor) else load_predictor(model, cache)
    results = [predictor.predict_file(path, timeline) for path in paths]
    return results[0] if single else results
