"""Speaker-independent splits: no actor on two sides, committed CSVs reproducible."""

from __future__ import annotations

import pandas as pd
import pytest

from emotion_lib.data.splits import (
    CORPUS_ACTORS,
    N_FOLDS,
    SplitError,
    assert_speaker_independent,
    assign_folds,
    attach_splits,
    read_folds,
    split_paths,
    write_splits,
)


@pytest.mark.parametrize("corpus", sorted(CORPUS_ACTORS))
def test_committed_splits_cover_every_actor_once(corpus):
    folds = read_folds(corpus)
    assert sorted(folds["actor"]) == sorted(CORPUS_ACTORS[corpus])
    assert folds["actor"].is_unique  # one fold per actor: no actor on two sides of any k-fold split
    assert set(folds["fold"]) == set(range(N_FOLDS[corpus]))
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
