"""Options are checked before any work: the extract command's numbers, the extraction settings, model files."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_lib import cli
from emotion_lib.data import corpora
from emotion_lib.features.store import ExtractionConfig

NONSENSE = [
    ("--fps", "0", "a positive number"),
    ("--fps", "-2", "a positive number"),
    ("--fps", "nan", "a positive number"),
    ("--fps", "five", "a positive number"),
    ("--detect-width", "0", "a positive integer"),
    ("--detect-width", "32.5", "a positive integer"),
    ("--workers", "0", "a positive integer"),
    ("--workers", "-3", "a positive integer"),
    ("--subset", "-5", "an integer of 0 or more"),
]


@pytest.mark.parametrize("option,value,expected", NONSENSE)
def test_extract_refuses_nonsense_numbers_before_anything_loads(monkeypatch, capsys, tmp_path, option, value, expected):
    def no_corpus_loading(*args, **kwargs):
        raise AssertionError("the corpus was loaded before the options were checked")

    monkeypatch.setattr(corpora, "load_corpus", no_corpus_loading)
    with pytest.raises(SystemExit) as info:
        cli.main(["extract", "--cache-dir", str(tmp_path / "cache"), option, value])
    assert info.value.code == 2
    assert f"argument {option}: expected {expected}, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_extract_accepts_sensible_numbers():
    args = cli.build_parser().parse_args(
        ["extract", "--fps", "2.5", "--detect-width", "160", "--workers", "1", "--subset", "0"]
    )
    assert (args.fps, args.detect_width, args.workers, args.subset) == (2.5, 160, 1, 0)


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"fps": 0}, "fps must be a positive"),
        ({"fps": -2.0}, "fps must be a positive"),
        ({"fps": float("nan")}, "fps must be a positive"),
        ({"fps": "5"}, "fps must be a positive"),
        ({"detect_width": 0}, "detect_width must be a positive"),
        ({"detect_width": 320.0}, "detect_width must be a positive"),
    ],
)
def test_extraction_config_refuses_nonsense_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        ExtractionConfig(**settings)


def test_extraction_config_accepts_numpy_numbers():
    assert ExtractionConfig(fps=5.0, detect_width=np.int64(320)) == ExtractionConfig()


@pytest.mark.parametrize(
    "content,message", [(b"", "empty file"), (b"\x00" * 64, "not a valid Flatbuffer")], ids=["empty", "zeros"]
)
def test_a_bad_tflite_model_is_named_once(tmp_path, content, message):
    from emotion_lib.realtime.window import ModelInputError, load_window_model

    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelInputError, match=message) as info:
        load_window_model(path)
    assert str(info.value).count(str(path)) == 1 and "model_path" not in str(info.value)
