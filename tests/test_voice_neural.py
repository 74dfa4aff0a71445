"""The voice model study's helpers: the seed ensemble and per-speaker scoring of a cross-corpus run."""

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.evaluation.baselines import CVResult
from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.experiments.ravdess_voice_neural import per_speaker_result, seed_ensemble
from emotion_lib.experiments.voice_recipes import CANDIDATES, VOICE_RECIPE
from emotion_lib.models.config import ModelConfig

LABELS = ["anger", "sadness"]


def _result(proba: np.ndarray, seed: int) -> CVResult:
    y_true = np.array(["anger", "anger", "sadness", "sadness"])
    fold_of = np.array([0, 0, 1, 1])
    y_pred = np.asarray(LABELS)[proba.argmax(axis=1)]
    metrics = [classification_metrics(y_true[fold_of == f], y_pred[fold_of == f], LABELS) for f in (0, 1)]
    chosen = [{"best_epoch": seed + f} for f in (0, 1)]
    return CVResult(f"seed{seed}", LABELS, y_true, y_pred, proba, fold_of, metrics, chosen)


def test_seed_ensemble_averages_probabilities_and_keeps_every_seed_choice():
    first = _result(np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.6, 0.4]]), 0)
    second = _result(np.array([[0.7, 0.3], [0.8, 0.2], [0.4, 0.6], [0.2, 0.8]]), 1)
    ensemble = seed_ensemble({0: first, 1: second}, "ensemble")
    np.testing.assert_allclose(ensemble.proba, (first.proba + second.proba) / 2)
    assert list(ensemble.y_pred) == ["anger", "anger", "sadness", "sadness"]  # each seed alone errs once
    assert ensemble.summary["ua"]["mean"] == pytest.approx(1.0)
    assert ensemble.chosen_params[1] == {"seed 0": {"best_epoch": 1}, "seed 1": {"best_epoch": 2}}


def test_per_speaker_result_scores_each_test_speaker_separately():
    first = _result(np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.6, 0.4]]), 0)
    result = per_speaker_result({0: first}, np.array(["savee:DC", "savee:JE", "savee:DC", "savee:JE"]), "x")
    assert list(result.fold_of) == [0, 1, 0, 1]
    assert [m["ua"] for m in result.fold_metrics] == [1.0, 0.0]


def test_the_voice_recipe_is_a_candidate_and_only_the_statistics_candidates_pool_statistics():
    assert VOICE_RECIPE in CANDIDATES.values()
    assert CANDIDATES["base"].input_statistics == ()
    assert CANDIDATES["statistics"].input_statistics and CANDIDATES["base_statistics"].input_statistics
    assert CANDIDATES["base_statistics"].replace(input_statistics=()) == CANDIDATES["base"]


def test_the_later_candidates_change_one_thing_of_the_utterance_recipe():
    recipe = CANDIDATES["compare_utterance"]
    changes = {
        "compare_utterance_pca256": {"utterance_reducer": "pca", "utterance_components": 256},
        "compare_utterance_anova2000": {"utterance_reducer": "anova", "utterance_components": 2000},
        "compare_utterance_refit": {"refit": True},
    }
    for name, change in changes.items():
        assert CANDIDATES[name] == recipe.replace(**change) != recipe


def test_statistic_sets_match_numpy_and_the_slope_of_a_ramp():
    from emotion_lib.experiments.voice_statistics import STATISTIC_SETS

    ramp = np.stack([np.linspace(0.0, 2.0, 101), np.full(101, 3.0)], axis=1)
    values = np.concatenate(STATISTIC_SETS["percentiles_slope"](ramp))
    mean, std, p1, p25, p50, p75, p99, iqr, slope = values.reshape(9, 2)
    np.testing.assert_allclose(mean, [1.0, 3.0])
    np.testing.assert_allclose(p50, [1.0, 3.0])
    np.testing.assert_allclose(iqr, [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(slope, [1.0, 0.0], atol=1e-9)  # per unit of the clip's [-1, 1] time axis
    assert np.concatenate(STATISTIC_SETS["mean_std_max_min"](ramp)).tolist() == [
        1.0,
        3.0,
        std[0],
        0.0,
        2.0,
        3.0,
        0.0,
        3.0,
    ]


def test_the_utterance_candidates_are_the_base_with_speaker_normalised_functionals_beside_it():
    for name, features in (("egemaps_utterance", "eGeMAPSv02"), ("compare_utterance", "ComParE_2016")):
        config = CANDIDATES[name]
        assert config.utterance_features == features and config.input_groups == ("audio", "utterance")
        defaults = ModelConfig()
        unchanged = config.replace(
            **{
                f: getattr(defaults, f)
                for f in ("utterance_features", "utterance_units", "utterance_dropout", "utterance_l2")
            }
        )
        assert unchanged == CANDIDATES["base"]


def test_saving_a_bundle_of_a_model_with_an_utterance_input_is_refused(tmp_path):
    from emotion_lib.features.normalise import Normaliser
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.models.fusion import build_model
    from emotion_lib.training.bundle import BundleError, save_bundle

    config = ModelConfig(
        modalities=("audio",),
        audio_dim=3,
        conv_filters=4,
        rnn_units=2,
        attention_units=2,
        dense_units=4,
        utterance_features="eGeMAPSv02",
        utterance_dim=2,
    )
    normaliser = Normaliser("global").fit([np.random.default_rng(0).normal(size=(5, 3))])
    with pytest.raises(BundleError, match="utterance"):
        save_bundle(tmp_path / "bundle", build_model(config), config, {"audio": normaliser}, ExtractionConfig())
    assert not (tmp_path / "bundle").exists()


def test_cross_validation_needs_utterance_vectors_exactly_when_the_recipe_has_that_input():
    from emotion_lib.evaluation.neural_cv import neural_cross_validation

    frames = [np.zeros((4, 3), np.float32)] * 6
    labels, actors, folds = ["anger"] * 6, list("aabbcc"), [["a"], ["b"], ["c"]]
    with pytest.raises(ValueError, match="utterance vectors are needed exactly when utterance_features is set"):
        neural_cross_validation(CANDIDATES["egemaps_utterance"], frames, labels, actors, folds)
    with pytest.raises(ValueError, match="utterance_features is set \\(it is ''\\)"):
        neural_cross_validation(CANDIDATES["base"], frames, labels, actors, folds, utterance=np.zeros((6, 2)))


def test_inner_fold_selection_reads_only_training_actors_and_adds_other_corpora_to_training(monkeypatch):
    import pandas as pd

    from emotion_lib.experiments import ravdess_voice_neural as study
    from emotion_lib.experiments.common import Context

    actors = [f"{a:02d}" for a in range(1, 13)]
    clips = pd.DataFrame(
        {
            "clip_id": [f"r{a}_{i}" for a in actors for i in (0, 1)],
            "actor": np.repeat(actors, 2),
            "emotion": LABELS * 12,
        }
    )
    folds = [actors[i : i + 2] for i in range(0, 12, 2)]
    savee = pd.DataFrame({"clip_id": ["s1", "s2"], "actor": ["DC", "JE"], "emotion": LABELS})
    read, seen = [], {}

    def frames(table, ctx, corpus, frame_set):
        read.append((corpus, frame_set, set(table["actor"])))
        return [np.zeros((3, 2), np.float32) for _ in range(len(table))]

    def cross_validation(config, sequences, labels, speakers, cv_folds, seed, normalise, *rest):
        seen[seed] = (set(speakers), cv_folds, normalise, len(sequences), len(labels))
        return _result(np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.6, 0.4]]), seed)

    monkeypatch.setattr(study, "_setup", lambda ctx: (ctx, clips, folds))
    monkeypatch.setattr(study, "load_corpus", lambda corpus, path: (savee, []))
    monkeypatch.setattr(study, "_frames", frames)
    monkeypatch.setattr(study, "neural_cross_validation", cross_validation)
    result, protocol, inner = study.inner_fold_result(
        Context(seeds=(0, 1, 2)), CANDIDATES["base"], "base", "eGeMAPSv02", "global", ("savee",)
    )
    assert inner == folds[1:] and sorted(seen) == [0, 1, 2] and len(result.fold_metrics) == 6
    speakers, cv_folds, normalise, n_sequences, n_labels = seen[0]
    assert speakers == set(actors[2:]) | {"savee:DC", "savee:JE"} and cv_folds == folds[1:] and normalise == "global"
    assert n_sequences == n_labels == 20 + 2
    assert read == [("RAVDESS", "eGeMAPSv02", set(actors[2:])), ("savee", "eGeMAPSv02", {"DC", "JE"})]
    assert "global normalisation" in protocol and "outer fold 0 are never used" in protocol
