"""openSMILE feature extraction: shapes, frame rate, feature sets, edge-case signals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_features_media import voice, write_audio

from emotion_lib.features.audio import SAMPLE_RATE, AudioError, AudioFeatureExtractor, MediaWarning


@pytest.fixture(scope="module")
def egemaps():
    return AudioFeatureExtractor("eGeMAPSv02", "lld")


def test_egemaps_lld_is_25_columns_at_100_frames_per_second(egemaps):
    features = egemaps.extract(voice(2.0))
    assert features.dtype == np.float32 and features.shape[1] == 25 == egemaps.dim
    assert 190 <= features.shape[0] <= 200 and np.isfinite(features).all()
    np.testing.assert_array_equal(features, egemaps.extract(voice(2.0)))  # deterministic


def test_louder_voice_gives_higher_loudness(egemaps):
    column = egemaps.feature_names.index("Loudness_sma3")
    quiet = egemaps.extract(0.1 * voice(1.0))[:, column].mean()
    loud = egemaps.extract(voice(1.0))[:, column].mean()
    assert loud > 2 * quiet > 0


def test_pitch_follows_the_voice(egemaps):
    column = egemaps.feature_names.index("F0semitoneFrom27.5Hz_sma3nz")
    low = egemaps.extract(voice(1.0))[:, column]
    rate = SAMPLE_RATE
    t = np.arange(rate) / rate
    high = egemaps.extract(
        (0.2 * np.sin(2 * np.pi * 280 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    )[:, column]
    # 280 Hz is an octave (12 semitones) above the ~140 Hz voice
    assert 9 < np.median(high[high > 0]) - np.median(low[low > 0]) < 15


def test_compare_lld_with_deltas_is_130_columns():
    extractor = AudioFeatureExtractor("ComParE_2016", "lld")
    features = extractor.extract(voice(1.0))
    assert features.shape[1] == 130 == extractor.dim
    names = extractor.feature_names
    assert not any("_de" in name for name in names[:65]) and all("_sma_de" in name for name in names[65:])
    assert 90 <= features.shape[0] <= 100


@pytest.mark.parametrize("feature_set,dim", [("eGeMAPSv02", 88), ("ComParE_2016", 6373)])
def test_functionals_are_one_row(feature_set, dim):
    features = AudioFeatureExtractor(feature_set, "functionals").extract(voice(1.0))
    assert features.shape == (1, dim) and np.isfinite(features).all()


def test_silence_gives_finite_features(egemaps):
    features = egemaps.extract(np.zeros(SAMPLE_RATE, np.float32))
    assert features.shape[0] > 90 and np.isfinite(features).all()
    loudness = egemaps.feature_names.index("Loudness_sma3")
    assert features[:, loudness].max() < 0.01 * egemaps.extract(voice(1.0))[:, loudness].mean()


def test_short_clips(egemaps):
    assert 10 <= egemaps.extract(voice(0.2)).shape[0] <= 20
    with pytest.raises(AudioError, match=r"tiny\.wav: audio too short"):
        egemaps.extract(voice(0.05), name="tiny.wav")


def test_sixty_second_clip(tmp_path, egemaps):
    features = egemaps.extract_file(write_audio(tmp_path / "long.flac", 60.0))
    assert features.shape[1] == 25 and 5980 <= features.shape[0] <= 6000 and np.isfinite(features).all()


def test_stereo_48k_input_is_converted(egemaps):
    mono = egemaps.extract(voice(1.0))
    stereo = egemaps.extract(voice(1.0, rate=48000, channels=2) / 0.85, sample_rate=48000)
    assert stereo.shape == mono.shape
    pitch = egemaps.feature_names.index("F0semitoneFrom27.5Hz_sma3nz")
    voiced = (mono[:, pitch] > 0) & (stereo[:, pitch] > 0)
    assert voiced.mean() > 0.5 and np.abs(mono[voiced, pitch] - stereo[voiced, pitch]).mean() < 0.5


def test_unknown_settings_are_rejected():
    with pytest.raises(ValueError, match="feature set"):
        AudioFeatureExtractor("GeMAPS_v99")
    with pytest.raises(ValueError, match="level"):
        AudioFeatureExtractor("eGeMAPSv02", "frames")


def test_extractor_pickles_as_its_settings(egemaps):
    import pickle

    copy = pickle.loads(pickle.dumps(egemaps))
    assert (copy.feature_set, copy.level) == (egemaps.feature_set, egemaps.level)
    np.testing.assert_array_equal(copy.extract(voice(1.0)), egemaps.extract(voice(1.0)))


def test_samples_beyond_full_scale_warn_and_normal_signals_do_not(egemaps):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaWarning)
        reference = egemaps.extract(voice(1.0))
        egemaps.extract(np.clip(voice(1.0) * 5, -1, 1))  # a clipped recording stays within full scale
    with pytest.warns(MediaWarning, match=r"loud\.wav: \d+\.\d% of the samples are beyond full scale \(peak 6\.\d\d\)"):
        loud = egemaps.extract(voice(1.0) * 20, name="loud.wav")
    assert loud.shape == reference.shape  # the features are still computed (openSMILE clips the samples)
