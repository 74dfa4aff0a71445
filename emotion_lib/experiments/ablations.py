"""Ablations of the neural model (pooling, loss, augmentation, modalities, encoder)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.evaluation.metrics import aggregate, classification_metrics
from emotion_lib.evaluation.records import ExperimentRecord, record_experiment
from emotion_lib.labels import EMOTIONS

LOG = logging.getLogger(__name__)

ABLATIONS: dict[str, dict[str, dict]] = {
    "pooling": {"attention": {}, "mean": {"pooling": "mean"}},
    "loss": {
        "focal": {"loss": "focal", "imbalance": "focal_alpha"},
        "crossentropy": {"loss": "crossentropy", "imbalance": "class_weight"},
    },
    "augmentation": {"on": {"augment": True}, "off": {"augment": False}},
    "modalities": {
        "audio": {"modalities": ("audio",)},
        "video": {"modalities": ("video",)},
        "fusion": {"modalities": ("audio", "video")},
    },
    "encoder": {"bilstm": {"encoder": "bilstm"}, "transformer": {"encoder": "transformer"}},
    "cross_modal": {"off": {"cross_modal": False}, "on": {"cross_modal": True, "modalities": ("audio", "video")}},
}
"""Ablation -> variant -> changes to the base ``ModelConfig``; each variant is trained with every seed."""


def neural_test_metrics(model, data) -> dict:
    """Metrics of a trained model on a :class:`~emotion_lib.sequences.SequenceData` (class names as labels)."""
    from emotion_lib.training.trainer import predict_data  # TensorFlow only when a model is tested

    predicted = predict_data(model, data).argmax(axis=1)
    names = np.asarray(EMOTIONS)
    return classification_metrics(names[data.labels], names[predicted], EMOTIONS)


def ablation_variants(base, ablations: Sequence[str] | None = None, has_video: bool = True) -> list[tuple]:
    """``(ablation, variant, config)`` for every variant the model supports on this data.

    Variants needing a ``ModelConfig`` field the model does not have or video on an audio-only corpus are
    returned with ``config=None`` and a reason in place of the config's repr.
    """
    fields = {f.name for f in dataclasses.fields(base)}
    rows = []
    for ablation in ablations or ABLATIONS:
        for variant, changes in ABLATIONS[ablation].items():
            missing = sorted(set(changes) - fields)
            needs_video = "video" in changes.get("modalities", base.modalities)
            if missing:
                rows.append((ablation, variant, None, f"ModelConfig has no field {', '.join(missing)}"))
            elif needs_video and not has_video:
                rows.append((ablation, variant, None, "the corpus has no face video"))
            else:
                rows.append((ablation, variant, base.replace(**changes), ""))
    return rows


def train_variant(
    config, splits: dict, seeds: Sequence[int], out_dir: Path, name: str, runs_before: int = 0, total_runs: int = 0
) -> list[tuple[dict, int]]:
    """Train ``config`` once per seed (early stopping on ``splits['validation']``, checkpoints in
    ``out_dir/<name>_seed<seed>``) and test once: ``(test metrics, epochs run)`` per seed.

    Each run logs a line when it starts and one when it ends; ``runs_before`` and ``total_runs`` (of the whole
    loop) let the start line say how far the loop is.
    """
    from emotion_lib.training.trainer import train  # TensorFlow only when a model is trained

    outcomes = []
    for number, seed in enumerate(seeds, start=1):
        overall = f" ({runs_before + number} of {total_runs})" if total_runs else ""
        LOG.info("%s seed %d/%d%s: training", name, number, len(seeds), overall)
        started = time.perf_counter()
        folder = Path(out_dir) / f"{name}_seed{seed}"
        result = train(
            config.replace(seed=seed), splits["train"], splits["validation"], folder, resume=False, progress=False
        )
        outcomes.append((neural_test_metrics(result.model, splits["test"]), result.epochs_run))
        LOG.info(
            "%s seed %d/%d: %d epochs, test UA %.3f, %.0f s",
            name,
            number,
            len(seeds),
            result.epochs_run,
            outcomes[-1][0]["ua"],
            time.perf_counter() - started,
        )
    return outcomes


def record_ablation(
    config, corpus: str, ablation: str, variant: str, seeds: Sequence[int], runs: list[dict], metrics_path, command
) -> None:
    """Record one ablation variant: mean and standard deviation over seeds of its test metrics."""
    record_experiment(
        ExperimentRecord(
            name=f"{corpus}_ablations/{ablation}/{variant}",
            corpus=corpus,
            protocol="train / validation (early stopping) / test actors of data/splits, actor-disjoint",
            folds=1,
            seeds=list(seeds),
            metrics=aggregate(runs),
            command=command,
            description=f"{ablation}: {variant} ({config.encoder}, {'+'.join(config.modalities)})",
            group=f"{corpus}_ablations",
            synthetic=corpus == "synthetic",
        ),
        metrics_path,
    )


def run_ablations(
    base,
    splits: dict,
    corpus: str,
    seeds: Sequence[int],
    out_dir: Path,
    ablations: Sequence[str] | None = None,
    metrics_path: Path | None = None,
    command: str = "",
) -> pd.DataFrame:
    """Train every ablation variant with every seed (early stopping on the validation actors), test once.

    ``splits`` holds ``train``, ``validation`` and ``test`` :class:`SequenceData` of actor-disjoint sides.
    Returns one row per variant and seed (UA, WA, macro-F1 on the test actors, epochs); with
    ``metrics_path`` each variant is recorded (mean and standard deviation over seeds).
    """
    has_video = bool(splits["train"].has_video().any())
    note = "synthetic (not emotion-recognition accuracy)" if corpus == "synthetic" else ""
    rows = []
    variants = ablation_variants(base, ablations, has_video)
    total = len(seeds) * sum(config is not None for *_, config, _ in variants)
    done = 0
    for ablation, variant, config, reason in variants:
        if config is None:
            LOG.info("ablation %s/%s skipped: %s", ablation, variant, reason)
            rows.append({"ablation": ablation, "variant": variant, "seed": None, "note": reason})
            continue
        outcomes = train_variant(config, splits, seeds, out_dir, f"{ablation}_{variant}", done, total)
        done += len(seeds)
        for seed, (metrics, epochs) in zip(seeds, outcomes):
            scores = {key: metrics[key] for key in ("ua", "wa", "macro_f1")}
            rows.append(
                {"ablation": ablation, "variant": variant, "seed": seed, **scores, "epochs": epochs, "note": note}
            )
        if metrics_path is not None:
            runs = [metrics for metrics, _ in outcomes]
            record_ablation(config, corpus, ablation, variant, seeds, runs, metrics_path, command)
    return pd.DataFrame(rows)


def summarise_ablations(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds (in %) per ablation variant; skipped variants keep their note."""
    trained = runs.dropna(subset=["seed"]) if "seed" in runs else runs.iloc[0:0]
    table = (
        trained.groupby(["ablation", "variant"], sort=False).agg(
            ua_mean=("ua", "mean"),
            ua_std=("ua", lambda x: x.std(ddof=0)),
            wa_mean=("wa", "mean"),
            macro_f1_mean=("macro_f1", "mean"),
            seeds=("seed", "count"),
        )
        if len(trained)
        else pd.DataFrame()
    )
    table = (
        (100 * table[["ua_mean", "ua_std", "wa_mean", "macro_f1_mean"]]).round(1).join(table[["seeds"]])
        if len(table)
        else table
    )
    skipped = runs[runs["seed"].isna()].set_index(["ablation", "variant"])[["note"]] if "seed" in runs else None
    return pd.concat([table, skipped]) if skipped is not None and len(skipped) else table
