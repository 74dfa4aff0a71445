"""The lean openSMILE engine: pruned configs and a reused engine give opensmile.Smile's features exactly."""

from __future__ import annotations

import os
import signal as signals
import threading

import numpy as np
import opensmile
import pytest
from test_features_media import voice

from emotion_lib.features.audio import FEATURE_SETS, SAMPLE_RATE, SINK_LEVELS, AudioFeatureExtractor, load_audio
from emotion_lib.features.smile import (
    CONFIG_ROOT,
    ENGINE_OPTIONS,
    SmileEngine,
    SmileError,
    components,
    expand_includes,
    lean_config,
    prune,
)

SMILE_LEVELS = {
    "lld": opensmile.FeatureLevel.LowLevelDescriptors,
    "lld_de": opensmile.FeatureLevel.LowLevelDescriptors_Deltas,
    "func": opensmile.FeatureLevel.Functionals,
}


def egemaps_config() -> str:
    return expand_includes(CONFIG_ROOT / "egemaps/v02/eGeMAPSv02.conf", {k: str(v) for k, v in ENGINE_OPTIONS.items()})


def smile_reference(feature_set: str, sink_levels: tuple[str, ...], signal: np.ndarray) -> tuple[list[str], np.ndarray]:
    """opensmile.Smile's names and features, one Smile per level, frames cut to the shortest level."""
    smiles = [opensmile.Smile(FEATURE_SETS[feature_set], SMILE_LEVELS[level]) for level in sink_levels]
    blocks = [np.asarray(smile(signal, SAMPLE_RATE), dtype=np.float32)[0].T for smile in smiles]
    frames = min(len(block) for block in blocks)
    return [n for smile in smiles for n in smile.feature_names], np.concatenate([b[:frames] for b in blocks], axis=1)


@pytest.mark.parametrize("feature_set,level", list(SINK_LEVELS))
def test_extractor_equals_opensmile_smile(feature_set, level, ravdess_dir):
    extractor = AudioFeatureExtractor(feature_set, level)  # pruned config, one engine reset between signals
    clips = [voice(1.5), load_audio(sorted(ravdess_dir.glob("Actor_01/*.flac"))[0]), voice(0.7)]
    for signal in clips:
        names, expected = smile_reference(feature_set, SINK_LEVELS[feature_set, level], signal)
        assert extractor.feature_names == names
        np.testing.assert_array_equal(extractor.extract(signal), expected)


def test_pruning_keeps_only_what_the_sink_reads():
    config = egemaps_config()
    lld, func = components(prune(config, ["lld"])), components(prune(config, ["func"]))
    assert len(lld) < len(func) <= len(components(config))
    assert "funcconcat" not in lld and "lldconcat" in lld  # the functionals are gone from the LLD config
    assert "funcconcat" in func and "lldconcat" not in func
    assert {"gemapsv01b_shs", "gemapsv01b_formantLpc"} <= set(lld) & set(func)  # pitch and formants serve both
    with pytest.raises(ValueError, match="no_such_level"):
        prune(config, ["no_such_level"])


def test_missing_config_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.conf"):
        expand_includes(tmp_path / "nothing.conf")


def test_full_scale_samples_are_clipped_not_wrapped():
    engine = SmileEngine(lean_config(CONFIG_ROOT / "egemaps/v02/eGeMAPSv02.conf", ["lld"]), ["lld"])
    signal = voice(1.0)
    signal = signal / np.abs(signal).max()  # peaks at exactly +-1.0: 32768 does not fit in 16 bits
    np.testing.assert_array_equal(engine(signal), engine(np.clip(signal, -1.0, 32767 / 32768)))


def test_a_signal_too_short_for_a_frame_gives_no_rows():
    engine = SmileEngine(lean_config(CONFIG_ROOT / "egemaps/v02/eGeMAPSv02.conf", ["lld"]), ["lld"])
    assert engine(np.zeros(160, np.float32)).shape == (0, 25)


@pytest.mark.parametrize("feature_set,level", list(SINK_LEVELS))
def test_frame_geometry_gives_opensmile_smiles_row_count(feature_set, level):
    """The row count the engine expects from its framers equals opensmile.Smile's on lengths around the edges."""
    engine = AudioFeatureExtractor(feature_set, level)._engine
    for samples in (960, 1119, 1120, 2399, 2400, 16159, 24160, 52345):
        audio = voice(samples / SAMPLE_RATE + 0.01)[:samples]
        assert len(audio) == samples
        expected = smile_reference(feature_set, SINK_LEVELS[feature_set, level], audio)[1]
        assert engine.geometry.rows(samples) == len(expected) == len(engine(audio))
    assert engine.geometry.rows(959) == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # ctypes reports what it drops
def test_a_frame_lost_in_the_callback_is_refused(monkeypatch):
    """An exception in openSMILE's frame callback (Ctrl-C landing there) is dropped by ctypes and the run ends a
    frame short: the engine refuses it, naming the clip, instead of returning the short array."""
    engine = SmileEngine(lean_config(CONFIG_ROOT / "egemaps/v02/eGeMAPSv02.conf", ["lld"]), ["lld"])
    expected = engine(voice(1.5))

    def interrupted_at_frame_20(rows: list, row: np.ndarray) -> None:
        if len(rows) == 20 and not getattr(interrupted_at_frame_20, "done", False):
            interrupted_at_frame_20.done = True
            raise KeyboardInterrupt
        rows.append(row.copy())

    monkeypatch.setattr(SmileEngine, "_on_row", staticmethod(interrupted_at_frame_20))
    with pytest.raises(SmileError, match=r"clip\.wav: openSMILE gave 145 frame\(s\) where 24000 samples give 146"):
        engine(voice(1.5), name="clip.wav")
    np.testing.assert_array_equal(engine(voice(1.5)), expected)  # the engine starts afresh


def test_ctrl_c_during_an_opensmile_run_is_raised_after_it():
    """Ctrl-C while openSMILE runs is held until the run ends, then raised: never lost in the frame callback."""
    engine = SmileEngine(lean_config(CONFIG_ROOT / "egemaps/v02/eGeMAPSv02.conf", ["lld"]), ["lld"])
    signal_60s = voice(60.0)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signals.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        engine(signal_60s)
        timer.join()
    timer.join()
    assert len(engine(signal_60s)) == engine.geometry.rows(len(signal_60s))
