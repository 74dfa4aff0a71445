"""Variable-length clips to padded, masked batches: validation, bucketing by length, tf.data pipelines.

A clip is an audio LLD array ``(Ta, Da)``, optionally face embeddings ``(Tv, Dv)`` with a frame mask ``(Tv,)``
(False where no face was found) and an integer label. Each batch is padded only to its own longest clip;
clips of similar length are batched together so little padding is wasted. Model inputs are float arrays
``audio (B, Ta, Da)``, ``audio_mask (B, Ta)``, ``video (B, Tv, Dv)``, ``video_mask (B, Tv)`` (1 = real frame).
A clip without video gets one all-masked video step, which the model treats as a missing modality.
Optionally each clip also has one utterance vector ``(Du,)`` (e.g. functionals, normalised per speaker across clips
before they get here), batched as ``utterance (B, Du)`` when the input group ``"utterance"`` is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from emotion_lib.labels import EMOTIONS
from emotion_lib.sequences.augment import mix_batch

MODALITIES = ("audio", "video")

Augmenter = Callable[
    [np.ndarray, "np.ndarray | None", "np.ndarray | None", np.random.Generator],
    tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"],
]
"""``(audio, video, video_mask, rng) -> (audio, video, video_mask)``, applied per clip before padding."""


class FeatureValueError(ValueError):
    """A clip's features contain NaN or infinite values, or have the wrong shape."""


def pad_sequences(
    arrays: Sequence[np.ndarray], dim: int, length: int | None = None, masks: Sequence[np.ndarray | None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``(T_i, dim)`` arrays to ``(B, length, dim)`` (default: the longest) with zeros; return the mask too.

    Longer arrays are cut to ``length``. ``masks`` (per-clip booleans, ``None`` = all valid) mark frames that
    exist but are invalid (no face); padded steps are always masked.
    """
    length = max((len(a) for a in arrays), default=1) if length is None else int(length)
    length = max(length, 1)
    padded = np.zeros((len(arrays), length, dim), dtype=np.float32)
    mask = np.zeros((len(arrays), length), dtype=np.float32)
    for i, array in enumerate(arrays):
        n = min(len(array), length)
        padded[i, :n] = array[:n]
        frame_mask = np.ones(n, dtype=bool) if masks is None or masks[i] is None else np.asarray(masks[i][:n], bool)
        mask[i, :n] = frame_mask
        padded[i, :n][~frame_mask] = 0.0
    return padded, mask


def bucket_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Index batches of clips with similar lengths: sort by length, cut into batches, shuffle batch order.

    With ``rng`` the order inside equal lengths and the order of batches are random (training); without it
    batches follow increasing length (evaluation, reproducible).
    """
    lengths = np.asarray(lengths)
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def check_features(array: np.ndarray, name: str, what: str) -> np.ndarray:
    """``array`` as float32 when it is a non-empty ``(frames, features)`` array of finite values; otherwise raise
    :class:`FeatureValueError` naming the clip ``name`` and the input ``what`` (``audio``, ``video``...)."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise FeatureValueError(
            f"clip {name}: {what} features must be a non-empty (frames, features) array, got shape {array.shape}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        frame, column = np.argwhere(bad)[0]
        raise FeatureValueError(
            f"clip {name}: {what} features contain {int(bad.sum())} NaN/inf values "
            f"(first at frame {frame}, feature {column}); refusing to use this clip"
        )
    return array


def feature_widths(
    names: Sequence[str],
    audio_shapes: Sequence[tuple[int, ...]],
    video_shapes: Sequence[tuple[int, ...] | None],
    video_dim: int | None = None,
) -> tuple[int, int | None]:
    """``(audio_dim, video_dim)`` shared by every clip (``video_dim`` given, or the one width of the clips with video,
    0 without any); a clip with another width raises :class:`FeatureValueError` naming it."""
    audio_dim = audio_shapes[0][1] if len(audio_shapes) else 0
    dims = {shape[1] for shape in video_shapes if shape is not None}
    if video_dim is None:
        video_dim = dims.pop() if len(dims) == 1 else (0 if not dims else None)
    for name, audio, video in zip(names, audio_shapes, video_shapes):
        if audio[1] != audio_dim:
            raise FeatureValueError(
                f"clip {name}: audio has {audio[1]} features per frame, expected {audio_dim} like the other clips"
            )
        if video is not None and video[1] != video_dim:
            raise FeatureValueError(f"clip {name}: video has {video[1]} features per frame, expected {video_dim}")
    return audio_dim, video_dim


def check_video(video: np.ndarray, mask: np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A clip's checked float32 video (:func:`check_features`) and boolean frame mask (all True when ``None``)."""
    video = check_features(video, name, "video")
    mask = np.ones(len(video), bool) if mask is None else np.asarray(mask, bool).reshape(-1)
    if len(mask) != len(video):
        raise FeatureValueError(f"clip {name}: video mask has {len(mask)} frames, video has {len(video)}")
    return video, mask


class ClipBatches:
    """Padded, bucketed batches and tf.data epochs of labelled clips; a subclass says where a clip's arrays come from.

    Subclasses provide :meth:`clip`, :meth:`lengths`, :meth:`shapes` and the attributes ``labels``, ``names``,
    ``n_classes``, ``audio_dim``, ``video_dim`` and ``utterance`` (``None`` or ``(n, Du)``).
    """

    labels: np.ndarray
    names: list[str]
    n_classes: int
    audio_dim: int
    video_dim: int | None
    utterance: np.ndarray | None

    def clip(self, index: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Clip ``index``'s ``(audio, video or None, video mask or None)``, validated and normalised."""
        raise NotImplementedError

    def lengths(self) -> np.ndarray:
        """Audio frames per clip, used for bucketing."""
        raise NotImplementedError

    def shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...] | None]]:
        """Per clip: the shape of its audio array and of its video array (``None`` without video)."""
        raise NotImplementedError

    @property
    def utterance_dim(self) -> int:
        """Width of the utterance vectors (0 without them)."""
        return 0 if self.utterance is None else int(self.utterance.shape[1])

    def make_batch(
        self,
        indices: Sequence[int],
        modalities: Sequence[str] = MODALITIES,
        augment: Augmenter | None = None,
        rng: np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        """Model inputs for the clips at ``indices``, padded to their longest clip.

        ``modalities`` are the input groups to make (``"audio"``, ``"video"``, ``"utterance"``).
        """
        audio, video, masks = [], [], []
        for i in indices:
            a, v, m = self.clip(i)
            if augment is not None:
                a, v, m = augment(a, v, m, rng)
            audio.append(a)
            video.append(np.zeros((1, self.video_dim or 1), np.float32) if v is None else v)
            masks.append(np.zeros(1, bool) if v is None else m)
        inputs: dict[str, np.ndarray] = {}
        if "audio" in modalities:
            inputs["audio"], inputs["audio_mask"] = pad_sequences(audio, self.audio_dim)
        if "video" in modalities:
            inputs["video"], inputs["video_mask"] = pad_sequences(video, self.video_dim or 1, masks=masks)
        if "utterance" in modalities:
            if self.utterance is None:
                raise FeatureValueError("the model has an utterance input but these clips have no utterance vectors")
            inputs["utterance"] = self.utterance[np.asarray(indices, dtype=np.int64)]
        return inputs

    def batches(
        self,
        batch_size: int,
        modalities: Sequence[str] = MODALITIES,
        seed: int | None = None,
        epoch: int = 0,
        augment: Augmenter | None = None,
        class_weights: np.ndarray | None = None,
        mixup_alpha: float = 0.0,
    ) -> Iterator[tuple]:
        """Yield ``(inputs, one_hot_labels, sample_weights)`` batches.

        With a ``seed`` the order is shuffled (and augmentation drawn) from ``(seed, epoch)`` alone, so an
        epoch is the same whether or not training was interrupted before it; without a seed the order is
        fixed (evaluation) and ``augment`` and ``mixup_alpha`` are ignored. With ``mixup_alpha > 0`` the clips
        of each training batch are mixed in pairs (:func:`~emotion_lib.sequences.augment.mix_batch`).
        """
        rng = None if seed is None else np.random.default_rng([seed, epoch])
        weights = np.ones(self.n_classes, np.float32) if class_weights is None else np.asarray(class_weights)
        for idx in bucket_batches(self.lengths(), batch_size, rng):
            inputs = self.make_batch(idx, modalities, augment if rng is not None else None, rng)
            labels = np.eye(self.n_classes, dtype=np.float32)[self.labels[idx]]
            sample_weights = weights[self.labels[idx]].astype(np.float32)
            if rng is not None and mixup_alpha > 0:
                inputs, labels, sample_weights = mix_batch(inputs, labels, sample_weights, mixup_alpha, rng)
            yield inputs, labels, sample_weights

    def dataset(
        self,
        batch_size: int,
        modalities: Sequence[str] = MODALITIES,
        seed: int | None = None,
        epoch: int = 0,
        augment: Augmenter | None = None,
        class_weights: np.ndarray | None = None,
        mixup_alpha: float = 0.0,
    ) -> tf.data.Dataset:
        """The :meth:`batches` of one epoch as a prefetched ``tf.data.Dataset``."""
        spec = {}
        if "audio" in modalities:
            spec["audio"] = tf.TensorSpec((None, None, self.audio_dim), tf.float32)
            spec["audio_mask"] = tf.TensorSpec((None, None), tf.float32)
        if "video" in modalities:
            spec["video"] = tf.TensorSpec((None, None, self.video_dim or 1), tf.float32)
            spec["video_mask"] = tf.TensorSpec((None, None), tf.float32)
        if "utterance" in modalities:
            spec["utterance"] = tf.TensorSpec((None, self.utterance_dim), tf.float32)
        signature = (spec, tf.TensorSpec((None, self.n_classes), tf.float32), tf.TensorSpec((None,), tf.float32))
        data = tf.data.Dataset.from_generator(
            lambda: self.batches(batch_size, modalities, seed, epoch, augment, class_weights, mixup_alpha),
            output_signature=signature,
        )
        return data.prefetch(2)


@dataclass
class SequenceData(ClipBatches):
    """Validated per-clip features and labels; makes padded batches and tf.data datasets.

    ``video`` is ``None`` (audio-only corpus) or a list with one ``(Tv, Dv)`` array or ``None`` per clip.
    ``utterance`` is ``None`` or one utterance vector per clip ``(n, Du)``.
    Construction rejects NaN/inf values and wrong shapes, naming the clip, so nothing bad is trained on.
    """

    audio: list[np.ndarray]
    labels: np.ndarray
    names: list[str]
    video: list[np.ndarray | None] | None = None
    video_masks: list[np.ndarray | None] | None = None
    video_dim: int | None = None
    n_classes: int = len(EMOTIONS)
    utterance: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.audio)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.names = [str(name) for name in self.names]
        self.video = [None] * n if self.video is None else list(self.video)
        self.video_masks = [None] * n if self.video_masks is None else list(self.video_masks)
        if not len(self.labels) == len(self.names) == len(self.video) == len(self.video_masks) == n:
            raise FeatureValueError(
                f"{n} audio arrays but {len(self.labels)} labels, {len(self.names)} names, "
                f"{len(self.video)} video arrays and {len(self.video_masks)} video masks"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            bad = int(np.flatnonzero((self.labels < 0) | (self.labels >= self.n_classes))[0])
            raise FeatureValueError(f"clip {self.names[bad]}: label {self.labels[bad]} outside 0..{self.n_classes - 1}")
        self.audio = [check_features(a, name, "audio") for a, name in zip(self.audio, self.names)]
        self.utterance = None if self.utterance is None else self._check_utterance(self.utterance)
        for i, name in enumerate(self.names):
            if self.video[i] is not None:
                self.video[i], self.video_masks[i] = check_video(self.video[i], self.video_masks[i], name)
        video_shapes = [None if v is None else v.shape for v in self.video]
        self.audio_dim, self.video_dim = feature_widths(
            self.names, [a.shape for a in self.audio], video_shapes, self.video_dim
        )

    def _check_utterance(self, utterance: np.ndarray) -> np.ndarray:
        utterance = np.asarray(utterance, dtype=np.float32)
        if utterance.ndim != 2 or len(utterance) != len(self.audio) or utterance.shape[1] == 0:
            raise FeatureValueError(
                f"utterance vectors must be a ({len(self.audio)} clips, features) array, got shape {utterance.shape}"
            )
        for row, name in zip(utterance, self.names):
            check_features(row[None, :], name, "utterance")
        return utterance

    def validate(self) -> None:
        """Re-check every array for NaN/inf (arrays are mutable); raise ``FeatureValueError`` naming the clip."""
        for name, audio, video in zip(self.names, self.audio, self.video):
            check_features(audio, name, "audio")
            if video is not None:
                check_features(video, name, "video")
        if self.utterance is not None:
            self._check_utterance(self.utterance)

    def __len__(self) -> int:
        return len(self.audio)

    def clip(self, index: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Clip ``index``'s ``(audio, video or None, video mask or None)`` as held."""
        return self.audio[index], self.video[index], self.video_masks[index]

    def lengths(self) -> np.ndarray:
        """Audio frames per clip, used for bucketing."""
        return np.array([len(a) for a in self.audio])

    def shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...] | None]]:
        """Per clip: the shape of its audio array and of its video array (``None`` without video)."""
        return [(a.shape, None if v is None else v.shape) for a, v in zip(self.audio, self.video)]

    @classmethod
    def concatenate(cls, first: SequenceData, second: SequenceData) -> SequenceData:
        """``first``'s clips, then ``second``'s, as one (re-validated) ``SequenceData``; both need the same inputs."""
        if (first.utterance is None) != (second.utterance is None) or first.video_dim != second.video_dim:
            raise ValueError("only clips with the same inputs (video width, utterance vectors) can be concatenated")
        return cls(
            first.audio + second.audio,
            np.concatenate([first.labels, second.labels]),
            first.names + second.names,
            first.video + second.video,
            first.video_masks + second.video_masks,
            first.video_dim,
            first.n_classes,
            None if first.utterance is None else np.concatenate([first.utterance, second.utterance]),
        )

    def subset(self, indices: Sequence[int]) -> SequenceData:
        """The clips at ``indices`` as a new (re-validated) ``SequenceData``."""
        idx = [int(i) for i in indices]
        return SequenceData(
            [self.audio[i] for i in idx],
            self.labels[idx],
            [self.names[i] for i in idx],
            [self.video[i] for i in idx],
            [self.video_masks[i] for i in idx],
            self.video_dim,
            self.n_classes,
            None if self.utterance is None else self.utterance[idx],
        )

    def has_video(self) -> np.ndarray:
        """Per clip: True when it has at least one frame with a face."""
        return np.array([m is not None and bool(m.any()) for m in self.video_masks])


def fixed_window(inputs: dict[str, np.ndarray], audio_frames: int, video_frames: int) -> dict[str, np.ndarray]:
    """Cut or zero-pad a batch of model inputs to a fixed window (the shape of the TFLite exports); utterance
    vectors pass unchanged."""
    out = {}
    for key, length in (("audio", audio_frames), ("video", video_frames)):
        if key not in inputs:
            continue
        x, m = inputs[key][:, :length], inputs[f"{key}_mask"][:, :length]
        pad = length - x.shape[1]
        out[key] = np.pad(x, ((0, 0), (0, pad), (0, 0))).astype(np.float32)
        out[f"{key}_mask"] = np.pad(m, ((0, 0), (0, pad))).astype(np.float32)
    if "utterance" in inputs:
        out["utterance"] = inputs["utterance"].astype(np.float32)
    return out


def random_clips(
    n: int,
    seed: int = 0,
    audio_dim: int = 25,
    video_dim: int = 128,
    audio_frames: tuple[int, int] = (40, 120),
    video_frames: tuple[int, int] = (4, 12),
    no_video_every: int = 3,
    separation: float = 0.5,
) -> SequenceData:
    """Random clips whose features shift with the label (learnable), for tests, benchmarks and smoke runs.

    Every ``no_video_every``-th clip has no video; other clips miss a face in about one frame in five.
    Not emotion data: anything measured on it is labelled synthetic.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(EMOTIONS)
    rng.shuffle(labels)
    audio, video, masks = [], [], []
    for i, label in enumerate(labels):
        shift = separation * (label - 2.5)
        audio.append(
            (rng.normal(size=(rng.integers(*audio_frames, endpoint=True), audio_dim)) + shift).astype(np.float32)
        )
        if no_video_every and i % no_video_every == 0:
            video.append(None)
            masks.append(None)
            continue
        frames = rng.normal(size=(rng.integers(*video_frames, endpoint=True), video_dim)) + shift
        mask = rng.random(len(frames)) > 0.2
        mask[0] = True
        video.append(np.where(mask[:, None], frames, 0.0).astype(np.float32))
        masks.append(mask)
    return SequenceData(audio, labels, [f"random_{seed}_{i:04d}" for i in range(n)], video, masks, video_dim)
