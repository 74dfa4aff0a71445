"""Feature-level augmentation keeps lengths, masks and audio/video sync; waveform option runs."""

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.sequences.augment import FeatureAugmenter, add_gaussian_noise, resample_time, scale, waveform_augmenter
from emotion_lib.sequences.data import random_clips


def test_resample_time_changes_length_and_keeps_a_linear_ramp_linear():
    ramp = np.linspace(0, 1, 101, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    fast, _ = resample_time(ramp, 1.25)
    slow, _ = resample_time(ramp, 0.8)
    assert len(fast) == round(101 / 1.25) and len(slow) == round(101 / 0.8)
    for out in (fast, slow):
        np.testing.assert_allclose(out[:, 0], np.linspace(0, 1, len(out)), atol=1e-6)


def test_resample_time_resamples_the_face_mask_and_never_blends_with_faceless_frames():
    video = np.arange(1, 11, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    mask = np.ones(10, bool)
    mask[4] = False
    video[4] = 0.0
    out, out_mask = resample_time(video, 0.7, mask)
    assert len(out) == len(out_mask) == round(10 / 0.7)
    assert 0 < (~out_mask).sum() <= 2
    np.testing.assert_array_equal(out[~out_mask], 0.0)
    assert np.all(out[out_mask, 0] >= 1.0)  # valid frames are never blended with the faceless frame's zeros


def test_noise_and_scale():
    rng = np.random.default_rng(0)
    x = np.zeros((2000, 10), np.float32)
    assert add_gaussian_noise(x, 0.1, rng).std() == pytest.approx(0.1, rel=0.05)
    np.testing.assert_allclose(scale(np.ones((2, 2), np.float32), 1.1), 1.1, rtol=1e-6)


def test_feature_augmenter_keeps_audio_and_video_in_sync_and_faceless_frames_zero():
    data = random_clips(6, seed=0, audio_dim=4, video_dim=3, audio_frames=(100, 100), video_frames=(10, 10))
    augmenter = FeatureAugmenter(noise_std=0.1, scale_range=(0.8, 1.2), tempo_range=(0.7, 0.7), p=1.0)
    audio, video, mask = augmenter(data.audio[1], data.video[1], data.video_masks[1], np.random.default_rng(3))
    assert len(audio) == round(100 / 0.7) and len(video) == len(mask) == round(10 / 0.7)
    np.testing.assert_array_equal(video[~mask], 0.0)
    assert not np.allclose(audio[:100], data.audio[1])
    same = augmenter(data.audio[1], data.video[1], data.video_masks[1], np.random.default_rng(3))
    np.testing.assert_array_equal(same[0], audio)
    idle = FeatureAugmenter(p=0.0)(data.audio[0], None, None, np.random.default_rng(0))
    assert idle[0] is data.audio[0] and idle[1] is None


def test_augmentation_applies_in_training_batches_only_with_masks_matching_lengths():
    data = random_clips(8, seed=1, audio_dim=4, video_dim=3)
    augmenter = FeatureAugmenter(noise_std=0.0, scale_range=(1.0, 1.0), tempo_range=(0.5, 0.5), p=1.0)
    train = list(data.batches(8, seed=0, augment=augmenter))[0][0]
    evaluation = list(data.batches(8, seed=None, augment=augmenter))[0][0]
    assert sorted(train["audio_mask"].sum(1)) == sorted(np.round(data.lengths() / 0.5))
    assert sorted(evaluation["audio_mask"].sum(1)) == sorted(data.lengths())
    assert train["video"].shape[1] == train["video_mask"].shape[1]


def test_waveform_augmenter_changes_a_tone_and_keeps_it_finite():
    np.random.seed(0)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    out = waveform_augmenter(p=1.0, stretch=(0.8, 0.8))(samples=tone, sample_rate=16000)
    assert np.all(np.isfinite(out)) and len(out) == pytest.approx(16000 / 0.8, rel=0.02)
    assert not np.allclose(out[:1000], tone[:1000])
