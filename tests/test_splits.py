"""Speaker-independent splits: no actor on two sides, committed CSVs reproducible."""

from __future__ import annotations

import pandas as pd
import pytest

from emotion_lib.data.corpora import CORPORA, CorpusError, CorpusSpec, load_savee
from emotion_lib.data.splits import (
    SplitError,
    assert_speaker_independent,
    assign_folds,
    attach_splits,
    read_folds,
    split_paths,
    write_splits,
)


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_committed_splits_cover_every_actor_once(corpus):
    folds = read_folds(corpus)
    assert sorted(folds["actor"]) == sorted(CORPORA[corpus].actors)
    assert folds["actor"].is_unique  # one fold per actor: no actor on two sides of any k-fold split
    assert set(folds["fold"]) == set(range(CORPORA[corpus].n_folds))
    sides = pd.read_csv(split_paths(corpus)[1], dtype={"actor": str})
    assert sides["actor"].is_unique and set(sides["split"]) == {"train", "validation", "test"}


def test_committed_splits_are_regenerated_identically(tmp_path):
    for path in write_splits(tmp_path):
        committed = split_paths(path.name.split("_")[0])[0].parent / path.name
        assert path.read_text() == committed.read_text(), f"{path.name} differs from the committed version"


def test_ravdess_folds_hold_three_of_the_shared_actors_each():
    folds = read_folds("ravdess")
    shared = folds[folds["actor"].astype(int) <= 18]
    assert shared.groupby("fold").size().tolist() == [3] * 6


def test_attach_splits_keeps_actors_on_one_side():
    clips = pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(48)],
            "corpus": "synthetic",
            "actor": [str(1001 + i % 24) for i in range(48)],
        }
    )
    split = attach_splits(clips)
    assert_speaker_independent(split, "split")
    assert_speaker_independent(split, "fold")
    for fold in range(6):
        test_actors = set(split.loc[split["fold"] == fold, "actor"])
        assert test_actors.isdisjoint(split.loc[split["fold"] != fold, "actor"])


def test_attach_splits_assigns_unknown_actors_fresh():
    clips = pd.DataFrame(
        {"clip_id": list("abcdef"), "corpus": "synthetic", "actor": ["9001", "9002", "9003", "9004", "9005", "9006"]}
    )
    split = attach_splits(clips)
    assert set(split["split"]) == {"train", "validation", "test"}
    assert split["actor"].is_unique


def test_leak_is_detected():
    table = pd.DataFrame({"corpus": ["x", "x"], "actor": ["1", "1"], "split": ["train", "test"]})
    with pytest.raises(SplitError, match="more than one side"):
        assert_speaker_independent(table, "split")


def test_too_few_actors():
    with pytest.raises(SplitError, match="cannot fill"):
        assign_folds("savee", ["DC", "JE"], n_folds=4)


def test_a_registered_corpus_gets_its_folds_and_split_files(tmp_path, monkeypatch):
    def by_initial(actors):  # a custom stratification: actors dealt by initial letter
        return [[a for a in actors if a[0] == initial] for initial in sorted({a[0] for a in actors})]

    actors = ("AA", "AB", "BA", "BB", "CA", "CB")
    monkeypatch.setitem(CORPORA, "toy", CorpusSpec(load_savee, actors, 2, by_initial))
    folds = assign_folds("toy")
    assert sorted(folds["actor"]) == list(actors) and folds.groupby("fold").size().tolist() == [3, 3]
    written = write_splits(tmp_path)
    assert tmp_path / "toy_folds_v1.csv" in written and tmp_path / "toy_train_val_test_v1.csv" in written
    assert read_folds("toy", tmp_path).equals(folds)


def test_unknown_corpus_without_actors_lists_the_known_ones():
    with pytest.raises(CorpusError, match="unknown corpus 'iemocap'; expected one of crema-d, ravdess"):
        assign_folds("iemocap")
    assert set(assign_folds("ckplus", ["S005", "S010", "S011", "S014", "S022"])["fold"]) == set(range(5))
