"""The results table in Markdown, generated from ``reports/metrics.json``, and the README section that shows it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emotion_lib.evaluation.metrics import paired_comparison
from emotion_lib.utils import atomic_write_bytes

RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"
"""The markers around the generated results section of a Markdown file (the README)."""


def _pct(summary: Mapping[str, float] | None) -> str:
    if not summary:
        return "-"
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def paired_against(
    experiments: Mapping[str, Mapping[str, Any]], name: str, reference: str | None
) -> dict[str, Any] | str:
    """:func:`~emotion_lib.evaluation.metrics.paired_comparison` of the per-run UA of experiment ``name`` with
    ``reference``'s, or why there is none. Both must have recorded per-run values over the same folds, and either
    the same seeds (runs are folds x seeds) or one value per fold each (e.g. a seed ensemble, one model per fold,
    against a deterministic baseline: the pairs are the folds)."""
    if not reference or name not in experiments or reference not in experiments:
        return "-"
    ours, theirs = experiments[name], experiments[reference]
    values, others = (record["metrics"].get("runs", {}).get("ua") for record in (ours, theirs))
    if not values or not others:
        return "not paired (no per-run values recorded)"
    folds = ours.get("folds")
    one_per_fold = isinstance(folds, list) and len(values) == len(others) == len(folds)
    same_seeds = len(values) == len(others) and ours.get("seeds") == theirs.get("seeds")
    if folds != theirs.get("folds") or not (one_per_fold or same_seeds):
        return "not paired (other folds or seeds)"
    return paired_comparison(values, others)


def _difference(comparison: Mapping[str, Any] | str) -> tuple[str, str]:
    """The cells "difference [95 % interval]" (points) and verdict of a paired comparison (or why there is none)."""
    if isinstance(comparison, str):
        return "-", comparison
    if comparison["n"] < 2:
        return f"{100 * comparison['mean']:+.1f}", comparison["verdict"]
    low, high = 100 * comparison["low"], 100 * comparison["high"]
    return f"{100 * comparison['mean']:+.1f} [{low:+.1f}, {high:+.1f}]", comparison["verdict"]


def _targets_lines(
    targets: Sequence[Mapping[str, Any]], hashes: str, experiments: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """The target check: one row per target (see :func:`emotion_lib.experiments.targets.target_status`), with the
    gain's paired 95 % interval over folds and seeds where the records hold per-run values."""
    lines = [
        f"{hashes} Targets",
        "",
        "| target | system | UA % | compared with | UA % | gain (points) | gain 95 % CI, paired | difference "
        "| status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in targets:
        reference = f"`{row['reference']}`" if row["reference"] else "-"
        ref_ua = f"{100 * row['reference_ua']:.1f}" if row["reference_ua"] is not None else "-"
        gain = f"{100 * row['gain']:+.1f}" if row["gain"] is not None else "-"
        interval, verdict = _difference(paired_against(experiments, row["system"], row["reference"]))
        status = "met" if row["met"] else f"missed: {row['shortfall']}"
        lines.append(
            f"| {row['target']} | `{row['system']}` | {100 * row['ua']:.1f} | {reference} | {ref_ua} | "
            f"{gain} | {interval} | {verdict} | {status} |"
        )
    return [*lines, ""]


def _group_lines(
    group: str, rows: list[tuple[str, Mapping[str, Any]]], hashes: str, experiments: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """One group's table: its corpus, protocol and seeds (of the first record), then one row per experiment; when
    records name a reference (``extra.reference``, e.g. ablation variants), each row's UA difference from it,
    paired over folds and seeds, with its 95 % interval and verdict."""
    first = rows[0][1]
    compared = any((record.get("extra") or {}).get("reference") for _, record in rows)
    synthetic = any(record.get("synthetic") or record.get("corpus") == "synthetic" for _, record in rows)
    title = f"{group}" + (" — synthetic (not emotion-recognition accuracy)" if synthetic else "")
    lines = [
        f"{hashes} {title}",
        "",
        f"Corpus: {first.get('corpus', '?')}. Protocol: {first.get('protocol', '?')}."
        f" Seeds: {', '.join(map(str, first.get('seeds', [])))}.",
        "",
        "| experiment | what | UA % | WA % | macro-F1 % | runs |"
        + (" UA − reference, points [95 % CI] | difference |" if compared else "")
        + " command |",
        "|---|---|---|---|---|---|" + ("---|---|" if compared else "") + "---|",
    ]
    for name, record in rows:
        metrics = record["metrics"]
        cells = ""
        if compared:
            reference = (record.get("extra") or {}).get("reference")
            interval, verdict = _difference(paired_against(experiments, name, reference))
            if reference == name or not reference:
                interval, verdict = "-", "reference" if reference == name else "-"
            else:
                interval = f"{interval} vs `{reference.rsplit('/', 1)[-1]}`"
            cells = f" {interval} | {verdict} |"
        lines.append(
            f"| `{name}` | {record.get('description', '')} | {_pct(metrics.get('ua'))} | "
            f"{_pct(metrics.get('wa'))} | {_pct(metrics.get('macro_f1'))} | {metrics.get('n_runs', '-')} |"
            f"{cells} `{record.get('command', '')}` |"
        )
    return [*lines, ""]


def results_markdown(
    experiments: Mapping[str, Mapping[str, Any]],
    targets: Sequence[Mapping[str, Any]] = (),
    heading_level: int = 2,
    not_run: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """Markdown tables of the recorded experiments (one table per group), the target check and the experiments
    that could not run here (``not_run``: name -> reason and command).

    Synthetic experiments are labelled "synthetic (not emotion-recognition accuracy)". Every row carries the
    command that reproduces it.
    """
    hashes = "#" * heading_level
    if not experiments:
        return "*No experiment recorded yet: run `make evaluate`.*\n"
    lines = _targets_lines(targets, hashes, experiments) if targets else []
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, record in experiments.items():
        groups.setdefault(record.get("group") or name.split("/")[0], []).append((name, record))
    for group, rows in groups.items():
        lines += _group_lines(group, rows, hashes, experiments)
    if not_run:
        lines += [f"{hashes} Not run here", "", "| experiment | why | command |", "|---|---|---|"]
        lines += [f"| `{name}` | {item['reason']} | `{item['command']}` |" for name, item in sorted(not_run.items())]
        lines.append("")
    lines.append(
        "UA: mean per-class recall; WA: accuracy; mean ± standard deviation over folds (x seeds). A difference is "
        "paired over the same folds and seeds: its mean and 95 % interval (Student's t over the pairs); when the "
        'interval holds 0 it is reported as "no difference".'
    )
    return "\n".join(lines) + "\n"


def update_marked_section(path: Path | str, section: str) -> bool:
    """Replace the text between :data:`RESULTS_START` and :data:`RESULTS_END` in ``path`` with ``section``.

    Returns False (and leaves the file alone) when the file or the markers are absent.
    """
    path = Path(path)
    if not path.exists():
        return False
    text = path.read_text()
    if RESULTS_START not in text or RESULTS_END not in text or text.index(RESULTS_START) > text.index(RESULTS_END):
        return False
    head, rest = text.split(RESULTS_START, 1)
    tail = rest.split(RESULTS_END, 1)[1]
    atomic_write_bytes(path, f"{head}{RESULTS_START}\n{section.strip()}\n{RESULTS_END}{tail}".encode())
    return True
