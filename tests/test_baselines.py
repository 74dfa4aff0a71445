"""Baselines, nested speaker-grouped cross-validation, late fusion and the experiment helpers (tiny inputs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.evaluation.baselines import (
    BlockFusion,
    InnerSelection,
    ModelSpec,
    fit_with_inner_cv,
    grouped_cross_validation,
    late_fusion_of,
    logistic,
    majority,
    pca_logistic,
    ridge,
    speaker_normalise,
    svm_rbf,
)
from emotion_lib.experiments.ckplus import fer_zero_shot
from emotion_lib.experiments.common import actor_folds
from emotion_lib.experiments.ravdess_fusion import load_openface_aus
from emotion_lib.features.faces.fer import FER2013_CLASSES
from emotion_lib.features.images import _uniform_lbp, hog_lbp_features


def _speaker_data(n_speakers: int = 8, per_class: int = 6, n_classes: int = 3, offset: float = 6.0, seed: int = 0):
    """Classes differ by a small shift; each speaker adds a large offset of their own (like voice pitch)."""
    rng = np.random.default_rng(seed)
    rows, labels, speakers = [], [], []
    for speaker in range(n_speakers):
        shift = rng.normal(0, offset, 4)
        for label in range(n_classes):
            centre = np.zeros(4)
            centre[label % 4] = 1.5
            rows.append(centre + shift + rng.normal(0, 0.4, (per_class, 4)))
            labels += [f"c{label}"] * per_class
            speakers += [f"s{speaker}"] * per_class
    return np.vstack(rows), np.array(labels), np.array(speakers)


class Recorder(ClassifierMixin, BaseEstimator):
    """Remembers the first feature (a row id) of every training row; predicts the first class."""

    log: list = []

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        Recorder.log.append(set(np.asarray(x)[:, 0].tolist()))
        return self

    def predict(self, x):
        return np.full(len(x), self.classes_[0])


def test_speaker_normalise_gives_each_speaker_zero_mean_unit_std():
    x, _, speakers = _speaker_data()
    z = speaker_normalise(x, speakers)
    for speaker in np.unique(speakers):
        block = z[speakers == speaker]
        np.testing.assert_allclose(block.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(block.std(axis=0), 1, atol=1e-4)
    with pytest.raises(ValueError, match="speaker ids"):
        speaker_normalise(x, speakers[:-1])


def test_no_test_speaker_reaches_training_and_augmented_rows_only_train():
    x, y, speakers = _speaker_data(n_speakers=6)
    ids = np.arange(len(x), dtype=float)[:, None]
    augmented = -1 - ids  # mirrored copies: negative ids
    folds = [["s0", "s1"], ["s2", "s3"], ["s4", "s5"]]
    Recorder.log = []
    result = grouped_cross_validation(ModelSpec("recorder", Recorder()), ids, y, speakers, folds, augmented=augmented)
    assert len(Recorder.log) == 3 and len(result.fold_metrics) == 3
    for seen, test_speakers in zip(Recorder.log, folds):
        test_ids = set(np.flatnonzero(np.isin(speakers, test_speakers)).tolist())
        assert not seen & test_ids
        assert not seen & {-1 - i for i in test_ids}
        assert len(seen) == 2 * (len(x) - len(test_ids))
    assert sorted(result.fold_of.tolist()) == sorted(np.repeat([0, 1, 2], len(x) // 3).tolist())
    with pytest.raises(ValueError, match="none of the speakers"):
        grouped_cross_validation(ModelSpec("recorder", Recorder()), ids, y, speakers, [["nobody"]])


def test_inner_cv_picks_from_the_grid_using_training_speakers_only():
    x, y, speakers = _speaker_data()
    Recorder.log = []
    model, chosen = fit_with_inner_cv(logistic(grid=(1e-4, 1.0)), x, y, speakers, inner_folds=3)
    assert chosen["logisticregression__C"] in (1e-4, 1.0)
    assert model.predict(x).shape == y.shape


def test_per_speaker_normalisation_beats_global_when_speakers_differ():
    x, y, speakers = _speaker_data(n_speakers=8)
    folds = [[f"s{i}", f"s{i + 1}"] for i in range(0, 8, 2)]
    global_ua = grouped_cross_validation(logistic(grid=(1.0,)), x, y, speakers, folds).summary["ua"]["mean"]
    speaker_ua = grouped_cross_validation(
        logistic(grid=(1.0,)), speaker_normalise(x, speakers), y, speakers, folds
    ).summary["ua"]["mean"]
    assert speaker_ua > 0.9
    assert speaker_ua > global_ua + 0.2


def test_majority_class_is_chance_and_svm_learns():
    x, y, speakers = _speaker_data(offset=0.0)
    folds = [["s0", "s1", "s2", "s3"], ["s4", "s5", "s6", "s7"]]
    assert grouped_cross_validation(majority(), x, y, speakers, folds).pooled["ua"] == pytest.approx(1 / 3)
    result = grouped_cross_validation(svm_rbf(), x, y, speakers, folds)
    assert result.summary["ua"]["mean"] > 0.9
    assert result.proba is not None and np.allclose(result.proba.sum(axis=1), 1)
    assert all({"svc__C", "svc__gamma"} <= set(params) for params in result.chosen_params)


def test_pca_logistic_searches_components():
    x, y, speakers = _speaker_data(offset=0.0)
    x = np.hstack([x, np.random.default_rng(1).normal(size=(len(x), 10))])
    _, chosen = fit_with_inner_cv(pca_logistic(components=(3, 5), grid=(1.0,)), x, y, speakers)
    assert chosen["pca__n_components"] in (3, 5)


def test_late_fusion_combines_complementary_blocks():
    rng = np.random.default_rng(0)
    n = 240
    y = np.repeat(["a", "b", "c"], n // 3)
    speakers = np.tile([f"s{i}" for i in range(8)], n // 8)
    block_a = (y == "a")[:, None] * 2.0 + rng.normal(0, 0.5, (n, 2))  # tells a from {b, c}
    block_b = (y == "c")[:, None] * 2.0 + rng.normal(0, 0.5, (n, 2))  # tells c from {a, b}
    x = np.hstack([block_a, block_b])
    folds = [[f"s{i}", f"s{i + 1}"] for i in range(0, 8, 2)]
    single = [
        grouped_cross_validation(logistic(grid=(1.0,)), block, y, speakers, folds).pooled["ua"]
        for block in (block_a, block_b)
    ]
    fusion = ModelSpec(
        "late", BlockFusion([("a", range(2), logistic(grid=(1.0,))), ("b", range(2, 4), logistic(grid=(1.0,)))])
    )
    result = grouped_cross_validation(fusion, x, y, speakers, folds)
    assert result.pooled["ua"] > max(single) + 0.15
    assert set(result.chosen_params[0]["members"]) == {"a", "b"}


def test_inner_selection_picks_the_informative_candidate_on_training_speakers_only():
    x, y, speakers = _speaker_data(n_speakers=8)
    x = speaker_normalise(x, speakers)
    noise = np.random.default_rng(2).normal(size=(len(x), 4))
    ids = np.arange(len(x), dtype=float)[:, None]
    table = np.hstack([ids, x, noise])
    candidates = [
        ("signal", ModelSpec("signal", BlockFusion([("x", range(1, 5), logistic(grid=(1.0,)))]))),
        ("noise", ModelSpec("noise", BlockFusion([("n", range(5, 9), logistic(grid=(1.0,)))]))),
        ("recorder", ModelSpec("recorder", Recorder())),
    ]
    folds = [[f"s{i}", f"s{i + 1}"] for i in range(0, 8, 2)]
    Recorder.log = []
    result = grouped_cross_validation(ModelSpec("selected", InnerSelection(candidates)), table, y, speakers, folds)
    assert [params["chosen"] for params in result.chosen_params] == ["signal"] * len(folds)
    assert all(params["inner_ua"]["signal"] > params["inner_ua"]["noise"] + 0.3 for params in result.chosen_params)
    assert result.pooled["ua"] > 0.8
    for fold, test_speakers in enumerate(folds):  # the recorder candidate never saw a test speaker's row
        test_ids = set(np.flatnonzero(np.isin(speakers, test_speakers)).tolist())
        fold_logs = Recorder.log[fold * 3 : (fold + 1) * 3]  # three inner folds per outer fold
        assert fold_logs and all(not (seen & test_ids) for seen in fold_logs)


def test_late_fusion_of_cross_validated_members_matches_block_fusion_idea():
    rng = np.random.default_rng(1)
    n = 240
    y = np.repeat(["a", "b", "c"], n // 3)
    speakers = np.tile([f"s{i}" for i in range(8)], n // 8)
    block_a = (y == "a")[:, None] * 2.0 + rng.normal(0, 0.5, (n, 2))
    block_b = (y == "c")[:, None] * 2.0 + rng.normal(0, 0.5, (n, 30))
    folds = [[f"s{i}", f"s{i + 1}"] for i in range(0, 8, 2)]
    first = grouped_cross_validation(logistic(grid=(1.0,)), block_a, y, speakers, folds)
    second = grouped_cross_validation(ridge(grid=(1.0, 100.0)), block_b, y, speakers, folds)
    assert np.allclose(second.proba.sum(axis=1), 1)
    fused = late_fusion_of([first, second])
    np.testing.assert_allclose(fused.proba, (first.proba + second.proba) / 2)
    assert len(fused.fold_metrics) == len(folds)
    assert fused.pooled["ua"] > max(first.pooled["ua"], second.pooled["ua"]) + 0.15
    other_folds = grouped_cross_validation(logistic(grid=(1.0,)), block_a, y, speakers, folds[::-1])
    with pytest.raises(ValueError, match="same rows and folds"):
        late_fusion_of([first, other_folds])


def test_actor_folds_partition_the_actors():
    actors = [f"{a:02d}" for a in range(1, 19)]
    folds = actor_folds("ravdess", actors)
    assert len(folds) == 6 and all(len(fold) == 3 for fold in folds)
    assert sorted(a for fold in folds for a in fold) == actors
    subjects = [f"S{i:03d}" for i in range(23)]
    folds = actor_folds("ckplus", subjects, n_folds=5)
    assert len(folds) == 5 and sorted(a for fold in folds for a in fold) == subjects


def test_uniform_lbp_and_hog_lbp_shapes():
    flat = np.full((48, 48), 100, dtype=np.uint8)
    assert len(np.unique(_uniform_lbp(flat))) == 1  # every pixel: all neighbours >= centre, one pattern
    codes = _uniform_lbp(np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.uint8))
    assert codes.min() >= 0 and codes.max() <= 58
    edge = np.zeros((48, 48), dtype=np.uint8)
    edge[:, 24:] = 200
    features = hog_lbp_features(np.stack([edge, edge[:, ::-1]]))
    assert features.shape == (2, 900 + 16 * 59)
    assert not np.allclose(features[0], features[1])


def test_fer_zero_shot_restricts_to_the_given_classes():
    probabilities = np.zeros((2, 7))
    probabilities[0, FER2013_CLASSES.index("surprise")] = 0.9
    probabilities[0, FER2013_CLASSES.index("fear")] = 0.1
    probabilities[1, FER2013_CLASSES.index("happy")] = 1.0
    assert list(fer_zero_shot(probabilities, ["fear", "happiness"])) == ["fear", "happiness"]


def test_openface_aus_align_with_ravdess_clips(tmp_path):
    clips = pd.DataFrame(
        {"clip_id": ["01-05-01-01-01-02", "01-03-01-01-01-02", "01-04-01-01-01-03"], "actor": ["02", "02", "03"]}
    )
    table = tmp_path / "aus.csv"
    table.write_text("clip,AU01_r,AU12_r\n01-01-03-01-01-01-02,0.1,0.9\n01-01-05-01-01-01-02,0.7,0.0\n")
    aus, kept = load_openface_aus(table, clips)
    assert list(kept["clip_id"]) == ["01-05-01-01-01-02", "01-03-01-01-01-02"]
    np.testing.assert_allclose(aus, [[0.7, 0.0], [0.1, 0.9]])
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        load_openface_aus(tmp_path / "absent.csv", clips)


@pytest.mark.shared_data
def test_real_openface_table_covers_the_ravdess_clips(shared_data):
    clips = ravdess_speech_clips(shared_data)
    aus, kept = load_openface_aus(shared_data / "ravdess-openface-au.csv", clips)
    assert len(kept) == len(clips) == 792 and aus.shape == (792, 35)
    assert np.isfinite(aus).all()
