"""Ablations of the neural model (pooling, loss, augmentation, modalities, encoder)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.evaluation.records import ExperimentRecord, record_experiment
from emotion_lib.labels import EMOTIONS

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
    from emotion_lib.training.trainer import predict_data

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
    from emotion_lib.evaluation.metrics import aggregate
    from emotion_lib.training.trainer import train

    has_video = bool(splits["train"].has_video().any())
    rows, synthetic = [], corpus == "synthetic"
    for ablation, variant, config, reason in ablation_variants(base, ablations, has_video):
        if config is None:
            rows.append({"ablation": ablation, "variant": variant, "seed": None, "note": reason})
            continue
        runs = []
        for seed in seeds:
            result = train(
                config.replace(seed=seed),
                splits["train"],
                splits["validation"],
                Path(out_dir) / f"{ablation}_{variant}_seed{seed}",
                resume=False,
            )
            metrics = neural_test_metrics(result.model, splits["test"])
            runs.append(metrics)
            rows.append(
                {
                    "ablation": ablation,
                    "variant": variant,
                    "seed": seed,
                    "ua": metrics["ua"],
                    "wa": metrics["wa"],
                    "macro_f1": metrics["macro_f1"],
                    "epochs": result.epochs_run,
                    "note": "synthetic (not emotion-recognition accuracy)" if synthetic else "",
                }
            )
        if metrics_path is not None:
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
                    synthetic=synthetic,
                ),
                metrics_path,
            )
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
