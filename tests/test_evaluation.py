"""Metrics, plots, the metrics file, the generated results table and the target check."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn.metrics import f1_score

from emotion_lib.evaluation.metrics import (
    aggregate,
    classification_metrics,
    per_class_recall,
    unweighted_accuracy,
    weighted_accuracy,
)
from emotion_lib.evaluation.records import ExperimentRecord, load_metrics, record_experiment, record_not_run
from emotion_lib.evaluation.reports import RESULTS_END, RESULTS_START, results_markdown, update_marked_section
from emotion_lib.experiments.results import write_results
from emotion_lib.experiments.targets import TARGETS, target_status
from emotion_lib.plots.evaluation import plot_attention, plot_confusion


def test_ua_is_mean_recall_and_wa_is_accuracy():
    y_true = ["anger"] * 3 + ["sadness"]
    y_pred = ["anger", "anger", "sadness", "sadness"]
    assert per_class_recall(y_true, y_pred) == {"anger": pytest.approx(2 / 3), "sadness": 1.0}
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx((2 / 3 + 1) / 2)
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(0.75)


def test_majority_class_scores_one_over_classes_ua_but_high_wa():
    y_true = np.array([0] * 90 + [1] * 5 + [2] * 5)
    y_pred = np.zeros(100, dtype=int)
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx(1 / 3)
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(0.9)


def test_classes_absent_from_truth_do_not_count_in_ua():
    labels = ["anger", "disgust", "fear"]
    metrics = classification_metrics(["anger", "fear"], ["anger", "disgust"], labels)
    assert set(metrics["per_class_recall"]) == {"anger", "fear"}
    assert metrics["ua"] == pytest.approx(0.5)
    assert metrics["confusion"] == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_macro_f1_and_confusion_match_definitions():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    metrics = classification_metrics(y_true, y_pred, [0, 1, 2, 3])
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    confusion = np.array(metrics["confusion"])
    assert confusion.sum() == 200
    assert list(confusion.sum(axis=1)) == [int((y_true == k).sum()) for k in range(4)]
    assert np.trace(confusion) / 200 == pytest.approx(metrics["wa"])


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        classification_metrics([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        unweighted_accuracy([], [])
    with pytest.raises(ValueError, match="nothing to aggregate"):
        aggregate([])


def test_aggregate_mean_std_and_summed_confusion():
    runs = [
        classification_metrics([0, 0, 1, 1], [0, 0, 1, 1], [0, 1]),
        classification_metrics([0, 0, 1, 1], [0, 1, 1, 0], [0, 1]),
    ]
    summary = aggregate(runs)
    assert summary["ua"] == {"mean": pytest.approx(0.75), "std": pytest.approx(0.25)}
    assert summary["per_class_recall"]["0"]["mean"] == pytest.approx(0.75)
    assert summary["confusion"] == [[3, 1], [1, 3]]
    assert summary["n_runs"] == 2


def record_result(name: str, ua: float, group: str = "g", **kwargs) -> ExperimentRecord:
    metrics = {
        "ua": {"mean": ua, "std": 0.01},
        "wa": {"mean": ua, "std": 0.0},
        "macro_f1": {"mean": ua, "std": 0.0},
        "n_runs": 6,
    }
    return ExperimentRecord(
        name=name,
        corpus=kwargs.pop("corpus", "ravdess"),
        protocol="actor folds",
        folds=[["01"], ["02"]],
        seeds=[0],
        metrics=metrics,
        command=f"run {name}",
        group=group,
        **kwargs,
    )


def test_record_experiment_merges_and_replaces(tmp_path):
    path = tmp_path / "metrics.json"
    record_experiment(record_result("a", 0.5), path)
    record_experiment(record_result("b", 0.6), path)
    record_experiment(record_result("a", 0.7), path)
    data = load_metrics(path)
    assert set(data["experiments"]) == {"a", "b"}
    entry = data["experiments"]["a"]
    assert entry["metrics"]["ua"]["mean"] == 0.7
    for key in ("corpus", "protocol", "folds", "seeds", "metrics", "command"):
        assert key in entry
    assert not list(tmp_path.glob("*.tmp"))


def test_not_run_notes_are_shown_and_cleared_when_the_experiment_runs(tmp_path):
    path = tmp_path / "metrics.json"
    record_not_run("ck/facenet", "no local weights", "run ck --facenet-weights PATH", path)
    record_experiment(record_result("ck/dlib", 0.6), path)
    data = load_metrics(path)
    text = results_markdown(data["experiments"], not_run=data["not_run"])
    assert "Not run here" in text and "| `ck/facenet` | no local weights | `run ck --facenet-weights PATH` |" in text
    record_experiment(record_result("ck/facenet", 0.7), path)
    assert load_metrics(path)["not_run"] == {}


def test_load_metrics_names_a_corrupt_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="metrics.json"):
        load_metrics(path)
    assert load_metrics(tmp_path / "absent.json") == {"experiments": {}}


def test_confusion_heatmap_counts_and_row_normalised():
    confusion = [[3, 1], [0, 4]]
    ax = plot_confusion(confusion, ["a", "b"])
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]
    ax = plot_confusion(confusion, ["a", "b"], normalise=True)
    assert [t.get_text() for t in ax.texts] == ["0.75", "0.25", "0.00", "1.00"]
    with pytest.raises(ValueError, match="labels"):
        plot_confusion(confusion, ["a", "b", "c"])


def test_attention_plot_drops_padded_frames():
    weights = np.array([0.1, 0.5, 0.4, 0.0, 0.0])
    ax = plot_attention(weights, mask=[True, True, True, False, False], frame_rate=10)
    x, y = ax.lines[0].get_data()
    assert list(y) == [0.1, 0.5, 0.4]
    assert x[-1] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="mask"):
        plot_attention(weights, mask=[True, False])


def test_results_markdown_has_every_row_its_command_and_synthetic_label():
    experiments = {
        "real/a": record_result("real/a", 0.61).to_dict(),
        "syn/b": record_result("syn/b", 0.9, group="syn", corpus="synthetic").to_dict(),
    }
    text = results_markdown(experiments)
    assert "| `real/a` |" in text and "`run real/a`" in text and "61.0 ± 1.0" in text
    assert "syn — synthetic (not emotion-recognition accuracy)" in text
    assert "real — synthetic" not in text
    assert "run `make evaluate`" in results_markdown({})


def test_target_status_reports_gain_and_shortfall():
    voice = TARGETS[0]
    experiments = {
        voice.system: record_result(voice.system, 0.66).to_dict(),
        voice.references[0]: record_result(voice.references[0], 0.53).to_dict(),
        voice.references[1]: record_result(voice.references[1], 0.63).to_dict(),
    }
    (row,) = target_status(experiments)
    assert row["reference"] == voice.references[1]
    assert row["gain"] == pytest.approx(0.03)
    assert not row["met"]
    assert "2.0 points below 68 %" in row["shortfall"] and "2.0 points short of +5" in row["shortfall"]
    experiments[voice.system]["metrics"]["ua"]["mean"] = 0.70
    assert target_status(experiments)[0]["met"]


def test_update_marked_section_rewrites_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    assert not update_marked_section(readme, "new table")
    readme.write_text(f"intro\n{RESULTS_START}\nold table\n{RESULTS_END}\noutro\n")
    assert update_marked_section(readme, "\nnew table\n\n")
    assert readme.read_text() == f"intro\n{RESULTS_START}\nnew table\n{RESULTS_END}\noutro\n"
    readme.write_text(f"{RESULTS_END} before {RESULTS_START}\n")
    assert not update_marked_section(readme, "new table")
    assert readme.read_text() == f"{RESULTS_END} before {RESULTS_START}\n"


def test_write_results_without_readme_writes_only_the_page(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"experiments": {}}))
    readme = tmp_path / "README.md"
    assert write_results(metrics, tmp_path / "r.md", readme) == (0, False)
    assert "No experiment recorded yet" in (tmp_path / "r.md").read_text() and not readme.exists()
