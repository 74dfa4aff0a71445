"""Training-only augmentation: feature-level (noise, scaling, tempo, SpecAugment-style masks) on the fly, and
waveform-level.

Feature-level augmentation works on one clip's arrays before padding (see
:meth:`emotion_lib.sequences.SequenceData.batches`), so lengths and masks stay right: tempo resampling
changes the number of frames of audio and video by the same factor and resamples the face mask with them.
Waveform-level augmentation (pitch shift, time stretch, noise with ``audiomentations``) is for features
extracted again from augmented audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def add_gaussian_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus zero-mean Gaussian noise of standard deviation ``std`` (in the features' own units)."""
    return (x + rng.normal(0.0, std, size=x.shape)).astype(np.float32)


def scale(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` multiplied by one global ``factor`` (a loudness/contrast change for normalised features)."""
    return (x * np.float32(factor)).astype(np.float32)


def resample_time(x: np.ndarray, rate: float, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Play a ``(T, D)`` sequence ``rate`` times faster by linear interpolation along time.

    Returns ``round(T / rate)`` frames (at least 1) and, when given, the frame mask resampled by nearest
    frame. Interpolation only mixes frames that are both valid; frames next to an invalid one copy the
    nearest frame instead, so no face embedding is blended with the zeros of a faceless frame.
    """
    length = len(x)
    new_length = max(1, int(round(length / rate)))
    positions = np.linspace(0.0, length - 1, new_length) if new_length > 1 else np.zeros(1)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, length - 1)
    frac = (positions - low)[:, None].astype(np.float32)
    nearest = np.rint(positions).astype(int)
    out = (1.0 - frac) * x[low] + frac * x[high]
    if mask is None:
        return out.astype(np.float32), None
    mask = np.asarray(mask, bool)
    blend_ok = mask[low] & mask[high]
    out[~blend_ok] = x[nearest[~blend_ok]]
    return out.astype(np.float32), mask[nearest]


def mask_spans(x: np.ndarray, axis: int, spans: int, max_width: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` with ``spans`` runs of up to ``max_width`` adjacent positions along ``axis`` set to 0 (SpecAugment's
    time and frequency masks, Park et al. 2019, without time warping).

    Each run's width is drawn uniformly from ``0..max_width`` (capped at the axis' length) and its start uniformly
    among the positions where it fits; runs may overlap. For per-speaker normalised features 0 is the speaker's mean.
    """
    out = np.array(x, dtype=np.float32, copy=True)
    length = out.shape[axis]
    for _ in range(spans):
        width = int(rng.integers(0, min(max_width, length) + 1))
        start = int(rng.integers(0, length - width + 1))
        index = [slice(None)] * out.ndim
        index[axis] = slice(start, start + width)
        out[tuple(index)] = 0.0
    return out


@dataclass
class FeatureAugmenter:
    """Random noise, scaling and tempo change for one clip, each applied with probability ``p``, then
    SpecAugment-style masks of the audio frames (every clip, when ``time_masks`` or ``feature_masks`` is set).

    Call as ``augmenter(audio, video, video_mask, rng)`` (the :data:`emotion_lib.sequences.Augmenter`
    protocol). Noise, scaling and masks act on audio; tempo acts on audio and video together, keeping them in sync.
    Faceless video frames stay exactly zero. A time mask spans up to ``time_mask_fraction`` of the clip's frames
    (after the tempo change); a feature mask up to ``feature_mask_width`` adjacent columns.
    """

    noise_std: float = 0.05
    scale_range: tuple[float, float] = (0.9, 1.1)
    tempo_range: tuple[float, float] = (0.9, 1.1)
    p: float = 0.5
    time_masks: int = 0
    time_mask_fraction: float = 0.1
    feature_masks: int = 0
    feature_mask_width: int = 13

    def __call__(
        self, audio: np.ndarray, video: np.ndarray | None, video_mask: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        if self.noise_std > 0 and rng.random() < self.p:
            audio = add_gaussian_noise(audio, self.noise_std, rng)
        if self.scale_range != (1.0, 1.0) and rng.random() < self.p:
            audio = scale(audio, rng.uniform(*self.scale_range))
        if self.tempo_range != (1.0, 1.0) and rng.random() < self.p:
            rate = rng.uniform(*self.tempo_range)
            audio, _ = resample_time(audio, rate)
            if video is not None:
                video, video_mask = resample_time(video, rate, video_mask)
                video = np.where(video_mask[:, None], video, 0.0).astype(np.float32)
        if self.time_masks:
            audio = mask_spans(audio, 0, self.time_masks, int(self.time_mask_fraction * len(audio)), rng)
        if self.feature_masks:
            audio = mask_spans(audio, 1, self.feature_masks, self.feature_mask_width, rng)
        return audio, video, video_mask


def mix_batch(
    inputs: dict[str, np.ndarray], labels: np.ndarray, weights: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018) inside one padded batch: each clip blended with another clip of the batch.

    Clip ``i`` becomes ``lam_i * clip_i + (1 - lam_i) * clip_partner`` for every input array (frames, utterance
    vectors), with the same blend of one-hot labels and sample weights; ``lam_i ~ Beta(alpha, alpha)``, folded to
    ``>= 0.5`` so each clip keeps the larger share. Masks (``*_mask``) become the union of the two clips', so a
    shorter clip's padding is filled by its partner's frames (scaled by its share). Keras' own ``MixUp`` layer
    mixes image batches only, hence this function.
    """
    n = len(labels)
    partner = rng.permutation(n)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)

    def blend(x: np.ndarray) -> np.ndarray:
        share = lam.reshape((n,) + (1,) * (x.ndim - 1))
        return (share * x + (1.0 - share) * x[partner]).astype(np.float32)

    mixed = {key: np.maximum(x, x[partner]) if key.endswith("_mask") else blend(x) for key, x in inputs.items()}
    return mixed, blend(labels), blend(weights)


def waveform_augmenter(
    p: float = 0.5,
    max_semitones: float = 2.0,
    stretch: tuple[float, float] = (0.9, 1.1),
    noise: tuple[float, float] = (0.001, 0.01),
):
    """An ``audiomentations`` pipeline (Gaussian noise, time stretch, pitch shift) for 16 kHz mono audio.

    Call it as ``augmenter(samples=wave, sample_rate=16000)``; seed NumPy's and Python's global generators
    (``emotion_lib.utils.set_seed``) for a reproducible draw.
    """
    from audiomentations import AddGaussianNoise, Compose, PitchShift, TimeStretch

    return Compose(
        [
            AddGaussianNoise(min_amplitude=noise[0], max_amplitude=noise[1], p=p),
            TimeStretch(
                min_rate=stretch[0],
                max_rate=stretch[1],
                leave_length_unchanged=False,
                method="librosa_phase_vocoder",
                p=p,
            ),
            PitchShift(min_semitones=-max_semitones, max_semitones=max_semitones, p=p),
        ]
    )


def one_at_a_time(
    audio: np.ndarray, noise_std: float, scale_factor: float, tempo_rate: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The clip's audio features unchanged and under each feature-level augmentation alone, at full strength."""
    single = {
        f"noise (std {noise_std})": FeatureAugmenter(noise_std, (1, 1), (1, 1), p=1.0),
        f"scaled x{scale_factor}": FeatureAugmenter(0.0, (scale_factor, scale_factor), (1, 1), p=1.0),
        f"tempo x{tempo_rate}": FeatureAugmenter(0.0, (1, 1), (tempo_rate, tempo_rate), p=1.0),
    }
    return {"original": audio, **{name: augmenter(audio, None, None, rng)[0] for name, augmenter in single.items()}}
