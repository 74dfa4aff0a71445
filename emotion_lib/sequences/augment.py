"""Training-only augmentation: feature-level (noise, scaling, tempo) on the fly, and waveform-level.

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


@dataclass
class FeatureAugmenter:
    """Random noise, scaling and tempo change for one clip, each applied with probability ``p``.

    Call as ``augmenter(audio, video, video_mask, rng)`` (the :data:`emotion_lib.sequences.Augmenter`
    protocol). Noise and scaling act on audio; tempo acts on audio and video together, keeping them in sync.
    Faceless video frames stay exactly zero.
    """

    noise_std: float = 0.05
    scale_range: tuple[float, float] = (0.9, 1.1)
    tempo_range: tuple[float, float] = (0.9, 1.1)
    p: float = 0.5

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
        return audio, video, video_mask


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
