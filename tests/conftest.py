"""Shared fixtures: the real clips in ../shared/data (skipped with a reason when absent), the session's real-clip
feature cache and the small generated corpora that several modules read (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

import emotion_lib  # noqa: F401  (loads openSMILE before any test module can load TensorFlow)
from emotion_lib.paths import shared_data_dir


def _shared(subpath: str) -> Path:
    path = shared_data_dir() / subpath
    if not path.exists():
        pytest.skip(f"real clips not available: {path} is absent (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder of real clips; skips the test when it is absent."""
    return _shared("")


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    return _shared("ravdess")


@pytest.fixture(scope="session")
def savee_dir() -> Path:
    return _shared("savee")


@pytest.fixture(scope="session")
def crema_d_dir() -> Path:
    return _shared("crema-d")


@pytest.fixture(scope="session")
def ravdess_faces_dir() -> Path:
    return _shared("ravdess-faces")


@pytest.fixture(scope="session")
def ckplus_dir() -> Path:
    return _shared("ckplus48")


@pytest.fixture(scope="session")
def real_feature_cache(tmp_path_factory) -> Path:
    """One feature cache for the session's smoke runs on the real clips (the end-to-end test's quick run and notebook
    05 under nbval): entries are keyed by corpus, clip and extraction settings, so the later run reads the real
    clips' features the earlier one extracted instead of extracting them again. The one generated corpus in it is
    the notebooks' smoke corpus: two generated corpora may share clip names, so no other test may use it."""
    return tmp_path_factory.mktemp("real_feature_cache")


def _generated_corpus(tmp_path_factory, n_actors: int) -> Path:
    from emotion_lib.data.synthetic import generate_corpus

    root = tmp_path_factory.mktemp(f"synthetic_{n_actors}_actors")
    return generate_corpus(root / "corpus", seed=0, n_actors=n_actors, clips_per_emotion=1, workers=2, progress=False)


@pytest.fixture(scope="session")
def corpus_3_actors(tmp_path_factory) -> Path:
    """The generated corpus of 3 actors x 6 emotions (18 clips, seed 0), made once for the session's tests of
    extraction, the cache and the runners. Read-only: a test that damages files copies it first (each test keeps
    its features in a cache of its own)."""
    return _generated_corpus(tmp_path_factory, 3)


@pytest.fixture(scope="session")
def corpus_4_actors(tmp_path_factory) -> Path:
    """The generated corpus of 4 actors x 6 emotions (24 clips, seed 0): the test, validation and two training
    actors of the committed split, the smallest corpus the training command takes. Made once for the session;
    read-only, like :func:`corpus_3_actors`."""
    return _generated_corpus(tmp_path_factory, 4)
