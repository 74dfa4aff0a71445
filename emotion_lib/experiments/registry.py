"""The experiment registry and its runner (``python -m emotion_lib evaluate``, ``make evaluate``)."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from emotion_lib.evaluation.records import load_metrics
from emotion_lib.experiments.common import Context

LOG = logging.getLogger(__name__)


EXPERIMENTS: dict[str, str] = {
    "ravdess_voice": "emotion_lib.experiments.ravdess_voice:run_ravdess_voice",
    "ravdess_neural": "emotion_lib.experiments.ravdess_neural:run_ravdess_neural",
    "ravdess_to_savee": "emotion_lib.experiments.ravdess_to_savee:run_ravdess_to_savee",
    "ckplus": "emotion_lib.experiments.ckplus:run_ckplus",
    "ravdess_fusion": "emotion_lib.experiments.ravdess_fusion:run_ravdess_fusion",
    "end_to_end": "emotion_lib.experiments.end_to_end:run_end_to_end",
    "pretrained": "emotion_lib.experiments.pretrained_eval:run_pretrained",
    "face_model": "emotion_lib.experiments.face_model:run_face_model",
    "face_zero_shot": "emotion_lib.experiments.face_zero_shot:run_face_zero_shot",
    "ravdess_voice_neural_selection": "emotion_lib.experiments.ravdess_voice_neural:run_selection",
    "ravdess_voice_neural": "emotion_lib.experiments.ravdess_voice_neural:run_ravdess_voice_neural",
    "ravdess_voice_statistics": "emotion_lib.experiments.voice_statistics:run_voice_statistics",
    "voice_shipping_selection": "emotion_lib.experiments.voice_shipping:run_voice_shipping_selection",
    "voice_speaker_adaptation": "emotion_lib.experiments.voice_adaptation:run_voice_speaker_adaptation",
    "ravdess_voice_ensemble_selection": "emotion_lib.experiments.voice_ensemble:run_ensemble_selection",
}
"""Experiment name -> ``module:function`` taking a :class:`Context` and returning result rows. Modules are imported
when their experiment runs, so listing or running the classical ones never loads TensorFlow."""


def experiment(name: str) -> Callable[[Context], list[dict]]:
    """The run function of experiment ``name`` (imported on demand)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(EXPERIMENTS)}")
    module, function = EXPERIMENTS[name].split(":")
    return getattr(importlib.import_module(module), function)


def pending_experiments(ctx: Context, rerun: bool = False) -> list[str]:
    """Experiments to run: a smoke subset with ``ctx.quick``, all with ``rerun``, else those not yet recorded."""
    if ctx.quick:
        return ["ravdess_fusion", "ravdess_neural", "end_to_end"]
    recorded = {record.get("group") for record in load_metrics(ctx.metrics_path)["experiments"].values()}
    return [name for name in EXPERIMENTS if rerun or name not in recorded]


def run_experiments(ctx: Context, only: Sequence[str] | None = None) -> list[dict]:
    """Run the chosen experiments (all by default); skip, with a message, when the real data are absent."""
    if not Path(ctx.data_dir).exists():
        LOG.warning("real data folder %s not found: the real-data experiments are skipped", ctx.data_dir)
        return []
    rows = []
    for name in only or EXPERIMENTS:
        run = experiment(name)
        started = time.perf_counter()
        rows += run(ctx)
        LOG.info("%s done in %.0f s", name, time.perf_counter() - started)
    return rows
