"""Feature-level augmentation keeps lengths, masks and audio/video sync; waveform option runs."""

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.sequences.augment import (
    FeatureAugmenter,
    add_gaussian_noise,
    mask_spans,
    mix_batch,
    resample_time,
    scale,
    waveform_augmenter,
)
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


def _zero_runs(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True in ``flags``."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_masks_zero_whole_frames_and_columns_in_at_most_the_requested_runs_and_touch_nothing_else():
    x = np.random.default_rng(0).normal(1.0, 0.1, size=(200, 30)).astype(np.float32)  # no zeros of its own
    for seed in range(20):
        in_time = mask_spans(x, 0, 2, 20, np.random.default_rng(seed))
        zero_rows = (in_time == 0).all(axis=1)
        assert (in_time == 0).sum() == zero_rows.sum() * 30  # whole frames, nothing partial
        assert len(_zero_runs(zero_rows)) <= 2 and zero_rows.sum() <= 40
        np.testing.assert_array_equal(in_time[~zero_rows], x[~zero_rows])
        in_columns = mask_spans(x, 1, 3, 4, np.random.default_rng(seed))
        zero_columns = (in_columns == 0).all(axis=0)
        assert len(_zero_runs(zero_columns)) <= 3 and max(_zero_runs(zero_columns), default=0) <= 4 * 3
        np.testing.assert_array_equal(in_columns[:, ~zero_columns], x[:, ~zero_columns])
    assert any((mask_spans(x, 0, 2, 20, np.random.default_rng(s)) == 0).any() for s in range(5))
    np.testing.assert_array_equal(
        mask_spans(x, 0, 2, 20, np.random.default_rng(7)), mask_spans(x, 0, 2, 20, np.random.default_rng(7))
    )
    assert not (x == 0).any()  # the input is copied, not masked in place
    short = mask_spans(np.ones((3, 2), np.float32), 0, 4, 50, np.random.default_rng(1))  # wider than the clip
    assert short.shape == (3, 2)


def test_the_augmenter_masks_audio_only_after_its_other_draws():
    data = random_clips(2, seed=0, audio_dim=26, video_dim=3, audio_frames=(300, 300), video_frames=(10, 10))
    plain = FeatureAugmenter(noise_std=0.1, p=1.0)
    masked = FeatureAugmenter(noise_std=0.1, p=1.0, time_masks=2, time_mask_fraction=0.1, feature_masks=2)
    clip = (data.audio[0], data.video[0], data.video_masks[0])
    audio, video, _ = plain(*clip, np.random.default_rng(4))
    masked_audio, masked_video, _ = masked(*clip, np.random.default_rng(4))
    np.testing.assert_array_equal(masked_video, video)
    kept = masked_audio != 0
    assert 0 < (~kept).sum() < audio.size // 2
    np.testing.assert_array_equal(masked_audio[kept], audio[kept])  # same noise, scale and tempo draws as without


def test_mixup_blends_inputs_labels_and_weights_with_the_same_share_and_joins_masks():
    rng = np.random.default_rng(0)
    inputs = {
        "audio": rng.normal(size=(6, 5, 3)).astype(np.float32),
        "audio_mask": (np.arange(5)[None, :] < np.array([2, 3, 5, 4, 5, 1])[:, None]).astype(np.float32),
        "utterance": rng.normal(size=(6, 4)).astype(np.float32),
    }
    labels = np.eye(6, dtype=np.float32)
    weights = np.arange(1, 7, dtype=np.float32)
    mixed, mixed_labels, mixed_weights = mix_batch(inputs, labels, weights, 0.4, np.random.default_rng(1))
    own_share = mixed_labels[np.arange(6), np.arange(6)]
    partner = np.array(
        [row.argmax() if row.max() > 0 else i for i, row in enumerate(mixed_labels - np.diag(own_share))]
    )
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(own_share >= 0.5)
    share = own_share[:, None]
    np.testing.assert_allclose(
        mixed["utterance"], share * inputs["utterance"] + (1 - share) * inputs["utterance"][partner], atol=1e-6
    )
    np.testing.assert_allclose(mixed_weights, own_share * weights + (1 - own_share) * weights[partner], rtol=1e-6)
    np.testing.assert_array_equal(mixed["audio_mask"], np.maximum(inputs["audio_mask"], inputs["audio_mask"][partner]))
    again = mix_batch(inputs, labels, weights, 0.4, np.random.default_rng(1))
    np.testing.assert_array_equal(again[0]["audio"], mixed["audio"])


def test_mixup_acts_on_training_batches_only():
    data = random_clips(8, seed=1, audio_dim=4, video_dim=3)
    _, train_labels, _ = next(iter(data.batches(8, seed=0, mixup_alpha=0.4)))
    _, plain_labels, _ = next(iter(data.batches(8, seed=0)))
    _, evaluation_labels, _ = next(iter(data.batches(8, seed=None, mixup_alpha=0.4)))
    assert set(np.unique(plain_labels)) == set(np.unique(evaluation_labels)) == {0.0, 1.0}
    assert not set(np.unique(train_labels)) <= {0.0, 1.0}


def test_waveform_augmenter_changes_a_tone_and_keeps_it_finite():
    np.random.seed(0)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    out = waveform_augmenter(p=1.0, stretch=(0.8, 0.8))(samples=tone, sample_rate=16000)
    assert np.all(np.isfinite(out)) and len(out) == pytest.approx(16000 / 0.8, rel=0.02)
    assert not np.allclose(out[:1000], tone[:1000])
