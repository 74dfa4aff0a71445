"""Reruns give the same numbers, tables tell an effect from noise, and the ablations train nothing twice.

- A small pipeline (a generated corpus, extraction with the voice and dlib faces into a cache of its own, a tiny
  seeded model trained and tested) run twice in two fresh processes gives bit-identical features, predictions and
  metrics.
- Paired comparisons over seeds and folds: a difference whose 95 % interval holds 0 is "no difference", in the
  ablation summary and in the generated results table.
- The ablations train the base configuration once per seed, however many variants equal it, and a rerun with
  unchanged data, code and settings trains nothing.
- Ablation runs train in spawned processes with one TensorFlow thread each: the same outcomes in one process or two
  side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
from tiny_models import TINY_MODEL

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.evaluation.metrics import NO_DIFFERENCE, aggregate, classification_metrics, paired_comparison
from emotion_lib.evaluation.reports import paired_against, results_markdown
from emotion_lib.experiments import ablations, run_cache
from emotion_lib.experiments.ablations import ablation_plan, ablation_variants, run_ablations, summarise_ablations
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig
from emotion_lib.paths import REPO_ROOT
from emotion_lib.sequences.data import SequenceData
from emotion_lib.training.processes import TRAINING_THREADS


def pipeline(corpus: str, cache: str, out: str) -> None:
    """Extract (voice + dlib faces at 2 fps), train a tiny seeded model, test it; write predictions and metrics."""
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.sequences.corpus import load_corpus_sequences
    from emotion_lib.training.trainer import predict_data, train

    extraction = ExtractionConfig(fps=2.0)
    _, splits, _ = load_corpus_sequences(
        "synthetic", corpus, extraction=extraction, cache_dir=cache, extract_missing=True
    )
    train_data = splits["train"]
    config = ModelConfig(
        **{**TINY_MODEL, "audio_dim": train_data.audio_dim, "video_dim": train_data.video_dim}, epochs=3, seed=5
    )
    result = train(config, train_data, splits["validation"], Path(out) / "model", resume=False, progress=False)
    probabilities = predict_data(result.model, splits["test"])
    np.save(Path(out) / "probabilities.npy", probabilities)
    metrics = run_cache.neural_test_metrics(result.model, splits["test"])
    (Path(out) / "metrics.json").write_text(json.dumps({"metrics": metrics, "epochs": result.epochs_run}))


@pytest.mark.slow
def test_a_rerun_in_a_fresh_process_gives_identical_features_predictions_and_metrics(tmp_path, corpus_4_actors):
    from test_reliability import assert_same_entries

    corpus = corpus_4_actors  # the test, validation and two training actors of the committed split (24 clips)
    runs = {}
    for run in ("first", "second"):  # side by side: two processes that share nothing but the corpus
        (tmp_path / run).mkdir()
        command = [sys.executable, __file__, str(corpus), str(tmp_path / run / "cache"), str(tmp_path / run)]
        with open(tmp_path / run / "stderr.txt", "w") as err:
            runs[run] = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=err)
    try:
        for run, process in runs.items():
            assert process.wait(timeout=900) == 0, (tmp_path / run / "stderr.txt").read_text()[-3000:]
    finally:
        for process in runs.values():
            process.kill()  # a no-op for a process that has ended
    first, second = (sorted((tmp_path / run / "cache" / "synthetic").iterdir()) for run in ("first", "second"))
    assert len(first) == len(second) == 1 and first[0].name == second[0].name  # one configuration key
    assert len(list(first[0].glob("*.npz"))) == 24
    assert_same_entries(second[0], first[0])
    probabilities = [np.load(tmp_path / run / "probabilities.npy") for run in ("first", "second")]
    assert probabilities[0].tobytes() == probabilities[1].tobytes()
    assert (tmp_path / "first" / "metrics.json").read_text() == (tmp_path / "second" / "metrics.json").read_text()


def test_paired_comparison_reports_noise_as_no_difference():
    noisy = paired_comparison([0.62, 0.58, 0.66], [0.60, 0.61, 0.60])
    assert noisy["verdict"] == NO_DIFFERENCE and noisy["low"] < 0 < noisy["high"]
    differences = np.array([0.02, -0.03, 0.06])
    half = 4.302652729911275 * differences.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert noisy["mean"] == pytest.approx(differences.mean())
    assert (noisy["low"], noisy["high"]) == pytest.approx((differences.mean() - half, differences.mean() + half))
    clear = paired_comparison([0.70, 0.72, 0.71], [0.60, 0.61, 0.62])
    assert clear["verdict"] == "better" and clear["low"] > 0
    assert paired_comparison([0.5, 0.6], [0.6, 0.72])["verdict"] == NO_DIFFERENCE  # two pairs: t(1) is very wide
    assert paired_comparison([0.5, 0.6, 0.55], [0.6, 0.71, 0.64])["verdict"] == "worse"
    same = paired_comparison([0.6, 0.7], [0.6, 0.7])
    assert (same["mean"], same["low"], same["high"], same["verdict"]) == (0.0, 0.0, 0.0, NO_DIFFERENCE)
    with pytest.raises(ValueError, match="equal-length"):
        paired_comparison([0.5, 0.6], [0.5])


def scores(ua: float, n: int = 12) -> dict:
    """Metrics of ``n`` predictions whose UA is about ``ua`` (two classes)."""
    right = round(ua * n)
    return classification_metrics([0] * n, [0] * right + [1] * (n - right), [0, 1])


def test_aggregate_keeps_the_per_run_values_in_order():
    summary = aggregate([scores(0.5), scores(0.75), scores(0.25)])
    assert summary["runs"]["ua"] == [0.5, 0.75, 0.25] and len(summary["runs"]["macro_f1"]) == 3


def test_results_table_reports_a_difference_within_the_noise_as_no_difference():
    def record(runs: list[float], reference: str | None = None) -> dict:
        extra = {"reference": reference} if reference else {}
        metrics = aggregate([scores(ua) for ua in runs])
        return {"corpus": "synthetic", "folds": 1, "seeds": [0, 1, 2], "metrics": metrics, "group": "g", "extra": extra}

    experiments = {
        "g/loss/focal": record([0.5, 0.75, 0.5], "g/loss/focal"),
        "g/loss/crossentropy": record([0.75, 0.5, 0.58], "g/loss/focal"),
        "g/modalities/audio": record([0.25, 0.25, 0.17], "g/loss/focal"),
        "g/old": {**record([0.5], "g/loss/focal"), "metrics": {"ua": {"mean": 0.5, "std": 0.0}}},
    }
    table = results_markdown(experiments)
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if line.startswith("| `")}
    assert "| reference |" in rows["g/loss/focal"]
    assert "+2.8 [" in rows["g/loss/crossentropy"] and f"| {NO_DIFFERENCE} |" in rows["g/loss/crossentropy"]
    assert "| worse |" in rows["g/modalities/audio"]
    assert "not paired" in rows["g/old"]
    assert "95 % interval" in table


def test_a_seed_ensemble_pairs_with_a_baseline_fold_by_fold_but_not_across_other_folds():
    folds = [["01", "02"], ["03", "04"], ["05", "06"]]

    def record(runs: list[float], seeds: list[int], folds: list) -> dict:
        return {"folds": folds, "seeds": seeds, "metrics": aggregate([scores(ua) for ua in runs])}

    experiments = {
        "ensemble": record([0.75, 0.83, 0.67], [0, 1, 2], folds),
        "ridge": record([0.5, 0.58, 0.42], [0], folds),
        "other_folds": record([0.5, 0.58, 0.42], [0], folds[::-1]),
        "per_seed": record([0.5, 0.58, 0.42, 0.5, 0.58, 0.42], [0, 1], folds),
    }
    assert paired_against(experiments, "ensemble", "ridge")["n"] == 3
    assert paired_against(experiments, "ensemble", "other_folds") == "not paired (other folds or seeds)"
    assert paired_against(experiments, "per_seed", "ridge") == "not paired (other folds or seeds)"


def tiny_splits() -> dict:
    """Train / validation / test sides of random features (12 clips each)."""
    rng = np.random.default_rng(0)

    def side(name: str) -> SequenceData:
        audio = [rng.normal(size=(20, 5)).astype(np.float32) for _ in range(12)]
        video = [rng.normal(size=(4, 4)).astype(np.float32) for _ in range(12)]
        return SequenceData(audio, np.arange(12) % 6, [f"{name}{i}" for i in range(12)], video, [np.ones(4, bool)] * 12)

    return {name: side(name) for name in ("train", "validation", "test")}


def test_the_base_configuration_is_planned_once_among_the_variants():
    base = ModelConfig(**TINY_MODEL)
    variants = ablation_variants(base)
    configs, index = ablation_plan(base, variants)
    assert len(variants) == 13 and len(configs) == 8 and configs[0] == (base, "base")
    shared = [key for key, i in index.items() if i == 0]
    assert sorted(shared) == sorted(
        [(a, ablations.reference_variant(base, a)) for a in ablations.ABLATIONS if a != "modalities"]
        + [("modalities", "fusion")]
    )
    assert len(shared) == 6
    modalities, _ = ablation_plan(base, ablation_variants(base, ["modalities"]))  # fusion (the base) listed last
    assert [label for _, label in modalities] == ["base", "modalities_audio", "modalities_video"]  # trained first


def test_the_synthetic_corpus_runs_the_modality_ablation_unless_asked_and_an_unknown_name_is_refused():
    assert ablations.choose_ablations("", "synthetic") == ["modalities"]
    assert ablations.choose_ablations("", "crema-d") == list(ablations.ABLATIONS)
    assert ablations.choose_ablations(" loss, encoder", "synthetic") == ["loss", "encoder"]
    with pytest.raises(ValueError, match="unknown ablation.*focus; choose from pooling, loss"):
        ablations.choose_ablations("loss,focus", "synthetic")


def test_ablations_train_the_base_once_per_seed_and_a_rerun_trains_nothing(tmp_path, monkeypatch):
    trained = []

    def fake_training(jobs, splits, out_dir, workers):  # here, instead of in spawned processes
        for i, (config, folder) in enumerate(jobs):
            trained.append((config.seed, folder))
            ua = 0.5 + 0.01 * config.seed + (0.1 if config.encoder == "transformer" else 0.0)
            names = np.asarray(EMOTIONS)
            right = round(ua * 12)
            predicted = np.where(np.arange(12) < right, splits["test"].labels, (splits["test"].labels + 1) % 6)
            yield i, (classification_metrics(names[splits["test"].labels], names[predicted], EMOTIONS), 3, 1.0, 1.0)

    monkeypatch.setattr(run_cache, "train_in_processes", fake_training)
    base, splits, metrics = ModelConfig(**TINY_MODEL), tiny_splits(), tmp_path / "metrics.json"
    runs = run_ablations(base, splits, "synthetic", [0, 1, 2], tmp_path / "runs", None, metrics)
    assert len(trained) == 8 * 3 and len(set(trained)) == 24
    assert sorted(seed for seed, folder in trained if folder.startswith("base")) == [0, 1, 2]
    again = run_ablations(base, splits, "synthetic", [0, 1, 2], tmp_path / "runs", None, metrics)
    assert len(trained) == 24 and again.equals(runs)  # read back from the result store, identical
    splits["test"].audio[0][0, 0] += 1.0  # changed data: trained again
    run_ablations(base, splits, "synthetic", [0], tmp_path / "runs", ["encoder"], None)
    assert len(trained) == 26
    table = summarise_ablations(runs)
    assert table.loc[("encoder", "transformer"), "verdict"] == "better"
    assert table.loc[("encoder", "transformer"), "ua_diff"] == pytest.approx(8.3, abs=0.1)
    assert table.loc[("loss", "focal"), "verdict"] == "reference"
    assert table.loc[("loss", "crossentropy"), "verdict"] == NO_DIFFERENCE
    record = json.loads(metrics.read_text())["experiments"]["synthetic_ablations/encoder/transformer"]
    assert (
        record["extra"]["reference"] == "synthetic_ablations/encoder/bilstm"
        and len(record["metrics"]["runs"]["ua"]) == 3
    )


@pytest.mark.slow
def test_runs_give_the_same_outcomes_in_one_process_or_two_side_by_side(tmp_path):
    """A run's outcome (metrics, epochs) does not depend on how many runs train side by side: each run's process
    has one TensorFlow thread."""
    base = ModelConfig(**TINY_MODEL, epochs=2, batch_size=8)
    jobs = [(base.replace(seed=0), "bilstm0"), (base.replace(seed=1, encoder="transformer"), "transformer1")]
    one = run_cache.train_runs(jobs, tiny_splits(), tmp_path / "one", workers=1, reuse=False)
    two = run_cache.train_runs(jobs, tiny_splits(), tmp_path / "two", workers=2, reuse=False)
    assert json.dumps(two) == json.dumps(one)


def test_a_runs_process_gives_tensorflow_one_thread():
    import tensorflow as tf

    with ProcessPoolExecutor(1, get_context("spawn"), run_cache._init_worker, ({},)) as pool:
        threads = pool.submit(thread_settings).result()
    assert threads == (TRAINING_THREADS, TRAINING_THREADS) == (1, 1)
    assert tf.config.threading.get_intra_op_parallelism_threads() == 0  # this process keeps TensorFlow's default


def thread_settings() -> tuple[int, int]:
    import tensorflow as tf

    threading = tf.config.threading
    return threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()


if __name__ == "__main__":
    pipeline(*sys.argv[1:])
