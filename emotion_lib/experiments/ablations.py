"""Ablations of the neural model (pooling, loss, augmentation, modalities, encoder)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.evaluation.metrics import aggregate, paired_comparison
from emotion_lib.evaluation.records import ExperimentRecord, record_experiment
from emotion_lib.experiments.run_cache import train_runs

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

SYNTHETIC_ABLATIONS = ("modalities",)
"""The ablations run on the synthetic corpus unless others are asked for: the only one whose effect its 72 test
clips and 3 seeds tell from noise. In the last full run of every ablation there (``reports/metrics.json`` at commit
324b261), audio alone was 29.6 points below the fusion, 95 % interval [-41.7, -17.5]; every other variant's paired
interval held 0, most of them 10 to 30 points wide. Pooling, loss, augmentation and the encoder are measured on real
voices instead (``ravdess_neural`` ablations)."""


def choose_ablations(names: str, corpus: str) -> list[str]:
    """The ablations to run: ``names`` (comma-separated keys of :data:`ABLATIONS`), or when empty every ablation on
    a real corpus and :data:`SYNTHETIC_ABLATIONS` on the synthetic one.

    Raises:
        ValueError: a name is not an ablation.
    """
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ABLATIONS))
    if unknown:
        raise ValueError(f"unknown ablation(s) {', '.join(unknown)}; choose from {', '.join(ABLATIONS)}")
    return chosen or list(SYNTHETIC_ABLATIONS if corpus == "synthetic" else ABLATIONS)


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


def reference_variant(base, ablation: str) -> str | None:
    """The variant of ``ablation`` that is ``base`` itself (the others are compared with it), or None."""
    fields = {f.name for f in dataclasses.fields(base)}
    for variant, changes in ABLATIONS[ablation].items():
        if set(changes) <= fields and base.replace(**changes) == base:
            return variant
    return None


def ablation_plan(base, variants: list[tuple]) -> tuple[list[tuple], dict[tuple[str, str], int]]:
    """The distinct configurations to train among ``variants`` (:func:`ablation_variants`), each once per seed.

    Returns ``[(config, label)]`` (``label`` names its checkpoint folders: ``base`` for the base configuration,
    else ``<ablation>_<variant>``) and, per trained ``(ablation, variant)``, the index of its configuration: every
    variant equal to the base (attention pooling, focal loss, ...) shares the base's training. The base comes first:
    the full model is among the longest runs, and runs side by side finish sooner when the long ones start first
    (on 2 cores, base last left one core idle for its whole last run).
    """
    configs: list[tuple] = [(base, "base")] if any(config == base for _, _, config, _ in variants) else []
    index: dict[tuple[str, str], int] = {}
    for ablation, variant, config, _ in variants:
        if config is None:
            continue
        same = [i for i, (known, _) in enumerate(configs) if known == config]
        if not same:
            configs.append((config, "base" if config == base else f"{ablation}_{variant}"))
        index[ablation, variant] = same[0] if same else len(configs) - 1
    return configs, index


def record_ablation(
    config, corpus: str, key: tuple[str, str, str | None], seeds: Sequence[int], runs, metrics_path, command
):
    """Record one ablation variant (``key``: ablation, variant, reference variant): mean and standard deviation
    over seeds of its test metrics, the per-seed values and the variant it is compared with."""
    ablation, variant, reference = key
    group = f"{corpus}_ablations"
    record_experiment(
        ExperimentRecord(
            name=f"{group}/{ablation}/{variant}",
            corpus=corpus,
            protocol="train / validation (early stopping) / test actors of data/splits, actor-disjoint",
            folds=1,
            seeds=list(seeds),
            metrics=aggregate(runs),
            command=command,
            description=f"{ablation}: {variant} ({config.encoder}, {'+'.join(config.modalities)})",
            group=group,
            synthetic=corpus == "synthetic",
            extra={"ablation": ablation, "variant": variant}
            | ({"reference": f"{group}/{ablation}/{reference}"} if reference else {}),
        ),
        metrics_path,
    )


# long: one loop over the variants that trains (or reuses), records and tabulates each
def run_ablations(
    base,
    splits: dict,
    corpus: str,
    seeds: Sequence[int],
    out_dir: Path,
    ablations: Sequence[str] | None = None,
    metrics_path: Path | None = None,
    command: str = "",
    workers: int = 0,
    reuse: bool = True,
) -> pd.DataFrame:
    """Train every distinct ablation configuration with every seed (early stopping on the validation actors), test
    once, and tabulate every variant.

    ``splits`` holds ``train``, ``validation`` and ``test`` :class:`SequenceData` of actor-disjoint sides. The base
    configuration is trained once per seed and shared by every variant equal to it (:func:`ablation_plan`);
    runs train in ``workers`` processes side by side (0: :func:`~emotion_lib.utils.default_workers`), one
    TensorFlow thread each, so the numbers do not depend on ``workers`` or on the machine's cores; with ``reuse`` a
    run whose configuration, seed, data and library code are unchanged is read from ``out_dir/results``
    (:mod:`emotion_lib.experiments.run_cache`) instead of trained again. Returns one row per
    variant and seed (UA, WA, macro-F1 on the test actors, epochs, the reference variant); with ``metrics_path``
    each variant is recorded (mean and standard deviation over seeds, per-seed values, reference).
    """
    has_video = bool(splits["train"].has_video().any())
    note = "synthetic (not emotion-recognition accuracy)" if corpus == "synthetic" else ""
    variants = ablation_variants(base, ablations, has_video)
    configs, index = ablation_plan(base, variants)
    jobs = [(config.replace(seed=seed), f"{label}_seed{seed}") for config, label in configs for seed in seeds]
    outcomes = train_runs(jobs, splits, Path(out_dir), workers, reuse)
    rows = []
    for ablation, variant, config, reason in variants:
        if config is None:
            LOG.info("ablation %s/%s skipped: %s", ablation, variant, reason)
            rows.append({"ablation": ablation, "variant": variant, "seed": None, "note": reason})
            continue
        first = index[ablation, variant] * len(seeds)
        runs = outcomes[first : first + len(seeds)]
        reference = reference_variant(base, ablation)
        for seed, (metrics, epochs) in zip(seeds, runs):
            scores = {key: metrics[key] for key in ("ua", "wa", "macro_f1")}
            rows.append(
                {"ablation": ablation, "variant": variant, "seed": seed, **scores, "epochs": epochs}
                | {"reference": reference, "note": note}
            )
        if metrics_path is not None:
            key = (ablation, variant, reference)
            record_ablation(config, corpus, key, seeds, [m for m, _ in runs], metrics_path, command)
    return pd.DataFrame(rows)


def _against_reference(trained: pd.DataFrame) -> pd.DataFrame:
    """Per variant: its UA minus its reference variant's, paired by seed (mean and 95 % t interval, in points)
    and the verdict of :func:`~emotion_lib.evaluation.metrics.paired_comparison`."""
    rows = {}
    for (ablation, variant), group in trained.groupby(["ablation", "variant"], sort=False):
        reference = group["reference"].iloc[0] if "reference" in group else None
        row = {"vs": reference or "-", "ua_diff": np.nan, "ua_diff_low": np.nan, "ua_diff_high": np.nan}
        if reference == variant:
            rows[ablation, variant] = {**row, "verdict": "reference"}
            continue
        other = trained[(trained["ablation"] == ablation) & (trained["variant"] == reference)]
        pairs = group.merge(other, on="seed", suffixes=("", "_reference"))
        if not len(pairs):
            rows[ablation, variant] = {**row, "verdict": "-"}
            continue
        comparison = paired_comparison(pairs["ua"], pairs["ua_reference"])
        points = {
            f"ua_diff{end}": round(100 * comparison[key], 1)
            for end, key in (("", "mean"), ("_low", "low"), ("_high", "high"))
        }
        rows[ablation, variant] = {**row, **points, "verdict": comparison["verdict"]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["ablation", "variant"]
    return table


def summarise_ablations(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds (in %) per ablation variant, and its UA difference from the
    reference variant of its ablation (paired by seed: mean, 95 % interval, verdict; a difference whose interval
    holds 0 is "no difference"); skipped variants keep their note."""
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
        (100 * table[["ua_mean", "ua_std", "wa_mean", "macro_f1_mean"]])
        .round(1)
        .join(table[["seeds"]])
        .join(_against_reference(trained))
        if len(table)
        else table
    )
    skipped = runs[runs["seed"].isna()].set_index(["ablation", "variant"])[["note"]] if "seed" in runs else None
    return pd.concat([table, skipped]) if skipped is not None and len(skipped) else table
