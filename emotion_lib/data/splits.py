"""Speaker-independent splits: every actor is on exactly one side of every split.

Each corpus has one versioned assignment of its actors to folds, written as CSV under
``emotion_lib/data/split_csvs/`` (package data, :data:`emotion_lib.paths.SPLITS_DIR`):

* ``<corpus>_folds_v1.csv`` (``corpus, actor, fold``): actor-grouped k-fold cross-validation;
* ``<corpus>_train_val_test_v1.csv`` (``corpus, actor, split``): fold 0 is the test side, fold 1 the
  validation side (early stopping, model selection), the other folds train.

Folds are filled round-robin from seeded shuffles of actor *strata* (sex where the corpus name encodes it),
so folds are balanced; each corpus's actors, number of folds and strata are its entry in
:data:`emotion_lib.data.corpora.CORPORA`. For RAVDESS, actors 01-18 (the ones in ``../shared/data``) are dealt
first, giving every fold exactly three of them, as in the evaluation protocol of 6 folds of 3 actors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.corpora import CORPORA, corpus_spec, one_stratum
from emotion_lib.paths import SPLITS_DIR

SPLIT_VERSION = "v1"
DEFAULT_N_FOLDS = 5
"""Folds of a corpus that is not in :data:`~emotion_lib.data.corpora.CORPORA` (e.g. CK+ subjects)."""


class SplitError(ValueError):
    """A split is missing, does not cover the clips, or puts an actor on two sides."""


def _n_folds(corpus: str) -> int:
    return CORPORA[corpus].n_folds if corpus in CORPORA else DEFAULT_N_FOLDS


def _strata(corpus: str, actors: list[str]) -> list[list[str]]:
    return (CORPORA[corpus].strata if corpus in CORPORA else one_stratum)(actors)


def assign_folds(
    corpus: str, actors: list[str] | None = None, n_folds: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """Assign each actor of ``corpus`` to one of ``n_folds`` folds; return ``corpus, actor, fold``.

    ``actors`` and ``n_folds`` default to the corpus's entry in :data:`~emotion_lib.data.corpora.CORPORA`.
    """
    actors = sorted(set(actors if actors is not None else corpus_spec(corpus).actors))
    n_folds = n_folds or _n_folds(corpus)
    if len(actors) < n_folds:
        raise SplitError(f"{corpus}: {len(actors)} actors cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    dealt = [actor for stratum in _strata(corpus, actors) for actor in rng.permutation(sorted(stratum))]
    folds = {actor: position % n_folds for position, actor in enumerate(dealt)}
    return pd.DataFrame({"corpus": corpus, "actor": actors, "fold": [folds[a] for a in actors]})


def to_train_val_test(folds: pd.DataFrame, test_fold: int = 0, validation_fold: int = 1) -> pd.DataFrame:
    """Turn a fold assignment into ``train`` / ``validation`` / ``test`` sides by actor."""
    split = np.where(
        folds["fold"] == test_fold, "test", np.where(folds["fold"] == validation_fold, "validation", "train")
    )
    return folds.drop(columns="fold").assign(split=split)


def split_paths(corpus: str, splits_dir: Path | str = SPLITS_DIR) -> tuple[Path, Path]:
    """The fold CSV and the train/validation/test CSV of ``corpus``."""
    splits_dir = Path(splits_dir)
    return (
        splits_dir / f"{corpus}_folds_{SPLIT_VERSION}.csv",
        splits_dir / f"{corpus}_train_val_test_{SPLIT_VERSION}.csv",
    )


def write_splits(splits_dir: Path | str = SPLITS_DIR, seed: int = 0) -> list[Path]:
    """Write the fold and train/validation/test CSVs of every known corpus; return the paths written."""
    written = []
    for corpus in CORPORA:
        folds = assign_folds(corpus, seed=seed)
        folds_path, tvt_path = split_paths(corpus, splits_dir)
        folds_path.parent.mkdir(parents=True, exist_ok=True)
        folds.to_csv(folds_path, index=False)
        to_train_val_test(folds).to_csv(tvt_path, index=False)
        written += [folds_path, tvt_path]
    return written


def read_folds(corpus: str, splits_dir: Path | str = SPLITS_DIR) -> pd.DataFrame:
    """Read the committed fold assignment of ``corpus``."""
    path = split_paths(corpus, splits_dir)[0]
    if not path.exists():
        raise SplitError(f"no split file for {corpus!r}: {path} (run `python -m emotion_lib splits`)")
    return pd.read_csv(path, dtype={"actor": str, "corpus": str})


def folds_for(corpus: str, actors: list[str], n_folds: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The committed folds of ``corpus`` for ``actors``, or a fresh seeded assignment of just those actors.

    A fresh assignment is made when ``n_folds`` is given or when the committed file is absent or does not
    cover every actor (a synthetic corpus with other settings, a new corpus).
    """
    actors = sorted(set(map(str, actors)))
    try:
        folds = read_folds(corpus) if n_folds is None else None
    except SplitError:
        folds = None
    if folds is None or not set(actors) <= set(folds["actor"]):
        n_folds = n_folds or min(_n_folds(corpus), len(actors))
        folds = assign_folds(corpus, actors, n_folds=n_folds, seed=seed)
    return folds[folds["actor"].isin(actors)].reset_index(drop=True)


def attach_splits(clips: pd.DataFrame, folds: pd.DataFrame | None = None, seed: int = 0) -> pd.DataFrame:
    """Add ``fold`` and ``split`` columns to a clip table, by actor.

    ``folds`` defaults to the committed assignment of the clips' corpus; when that file does not cover the
    clips' actors (a synthetic corpus with other settings, a new corpus), a fresh assignment is made from
    ``seed`` over the actors present.
    """
    if clips.empty:
        raise SplitError("cannot split an empty clip table")
    corpora = clips["corpus"].unique()
    if len(corpora) != 1:
        raise SplitError(f"attach_splits expects one corpus, got {sorted(corpora)}")
    corpus = str(corpora[0])
    actors = sorted(clips["actor"].astype(str).unique())
    if folds is None:
        folds = folds_for(corpus, actors, seed=seed)
    missing = set(actors) - set(folds["actor"].astype(str))
    if missing:
        raise SplitError(f"{corpus}: actors {sorted(missing)} are not in the split")
    sides = to_train_val_test(folds).set_index("actor")["split"]
    fold_of = folds.set_index(folds["actor"].astype(str))["fold"]
    actor = clips["actor"].astype(str)
    return clips.assign(fold=actor.map(fold_of).to_numpy(), split=actor.map(sides).to_numpy())


def assert_speaker_independent(table: pd.DataFrame, side_column: str) -> None:
    """Raise :class:`SplitError` when an actor appears with more than one value of ``side_column``."""
    sides = table.groupby(["corpus", "actor"])[side_column].nunique()
    leaking = sides[sides > 1]
    if not leaking.empty:
        raise SplitError(f"actors on more than one side of {side_column!r}: {list(leaking.index)}")
