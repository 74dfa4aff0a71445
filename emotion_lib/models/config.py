"""``ModelConfig``: every choice of the branched model, saved as JSON beside it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emotion_lib.labels import EMOTIONS
from emotion_lib.models.layers import STATISTICS
from emotion_lib.models.losses import check_loss
from emotion_lib.utils import atomic_write_bytes

if TYPE_CHECKING:
    from emotion_lib.sequences.augment import FeatureAugmenter


@dataclass
class ModelConfig:
    """All hyperparameters of the model, its training and its exports (notebooks pass these as parameters)."""

    modalities: tuple[str, ...] = ("audio", "video")
    audio_dim: int = 25
    video_dim: int = 128
    n_classes: int = len(EMOTIONS)
    # architecture
    encoder: str = "bilstm"  # "bilstm" or "transformer"
    conv_filters: int = 64
    conv_kernel: int = 5
    conv_strides: int = 2
    rnn_units: int = 64
    video_rnn_units: int = 32
    transformer_heads: int = 2
    transformer_ff: int = 128
    transformer_layers: int = 1
    attention_units: int = 64
    pooling: str = "attention"  # "attention" (TemporalAttention) or "mean" (masked mean over time)
    cross_modal: bool = False
    dense_units: int = 64
    dropout: float = 0.3
    input_statistics: tuple[str, ...] = ()  # e.g. ("mean", "std"): masked statistics of the audio input frames
    statistics_dropout: float = 0.0  # dropout on those statistics before they join the pooled sequence
    l2: float = 0.0  # L2 penalty on the kernels of the dense layers
    # a second audio input: one utterance vector per clip (e.g. openSMILE functionals), normalised per speaker in
    # the data pipeline; off while utterance_features is "" (then no such input exists)
    utterance_features: str = ""  # what the vector is, e.g. "eGeMAPSv02" functionals (read by the data pipeline)
    utterance_dim: int = 0  # its width (set from the features, like audio_dim)
    utterance_units: int = 32  # Dense units (ReLU) on the vector before it joins the pooled sequences
    utterance_dropout: float = 0.0  # dropout on the vector before that Dense layer
    utterance_noise: float = 0.0  # std of Gaussian noise on the (standardised) vector in training, before the dropout
    utterance_l2: float = 0.0  # L2 penalty on that Dense layer's kernel
    utterance_logits: bool = False  # also a linear path from the vector to the class scores (same dropout and L2)
    utterance_reducer: str = ""  # "" or a name in features.reduction.UTTERANCE_REDUCERS, fitted on training clips
    utterance_components: int = 0  # the columns that reducer keeps (then utterance_dim is this)
    modality_dropout: float = 0.2
    # training
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 30
    patience: int = 6
    lr_patience: int = 2
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    loss: str = "focal"  # a name in emotion_lib.models.losses.LOSSES: "focal" or "crossentropy"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0  # targets (1 - s) * one-hot + s / n_classes, for either loss
    imbalance: str = "focal_alpha"  # "focal_alpha", "class_weight" or "none"
    # neural cross-validation only: after early stopping, train again on the training + validation clips for the
    # early-stopped epochs with the same learning-rate schedule; that model predicts the test clips
    refit: bool = False
    # with refit: the test probabilities are the mean of the early-stopped and the refitted model's (two members that
    # differ by their training actors and epochs, not only by the seed)
    refit_ensemble: bool = False
    augment: bool = True
    noise_std: float = 0.05
    scale_range: tuple[float, float] = (0.9, 1.1)
    tempo_range: tuple[float, float] = (0.9, 1.1)
    augment_p: float = 0.5
    # SpecAugment-style masking of the audio frames in training (every clip, after the augmentations above):
    # time_masks spans of up to time_mask_fraction of the clip's frames and feature_masks runs of up to
    # feature_mask_width adjacent columns are set to 0 (the speaker's or corpus' mean for normalised features)
    time_masks: int = 0
    time_mask_fraction: float = 0.1
    feature_masks: int = 0
    feature_mask_width: int = 13
    mixup_alpha: float = 0.0  # > 0: each training batch's clips mixed in pairs, share ~ Beta(alpha, alpha) (mixup)
    gpu_batch_multiplier: int = 4
    seed: int = 0
    # exports: the fixed window of the TFLite models and the real-time predictor
    window_audio_frames: int = 200
    window_video_frames: int = 10
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        self.scale_range = tuple(self.scale_range)
        self.tempo_range = tuple(self.tempo_range)
        self.input_statistics = tuple(self.input_statistics)
        unknown = set(self.modalities) - {"audio", "video"}
        if not self.modalities or unknown:
            raise ValueError(f"modalities must be a non-empty subset of ('audio', 'video'), got {self.modalities}")
        if self.encoder not in ("bilstm", "transformer"):
            raise ValueError(f"encoder must be 'bilstm' or 'transformer', got {self.encoder!r}")
        if self.pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {self.pooling!r}")
        if set(self.input_statistics) - set(STATISTICS):
            raise ValueError(f"input_statistics must be a subset of {STATISTICS}, got {self.input_statistics}")
        if self.input_statistics and "audio" not in self.modalities:
            raise ValueError("input_statistics are statistics of the audio frames: the model has no audio input")
        if self.utterance_logits and not self.utterance_features:
            raise ValueError("utterance_logits needs the utterance input: set utterance_features")
        if self.utterance_features and "audio" not in self.modalities:
            raise ValueError("utterance_features describe the audio of a clip: the model has no audio input")
        if self.utterance_dim < 0 or self.utterance_units < 1:
            raise ValueError(
                f"utterance_dim must be >= 0 and utterance_units >= 1, got {self.utterance_dim}, {self.utterance_units}"
            )
        if self.utterance_reducer:
            # imported only here: importing the features package reads EMOTION_CACHE (emotion_lib.paths), which the
            # SageMaker entry point sets after importing the cloud package, and so this module
            from emotion_lib.features.reduction import check_reducer

            check_reducer(self.utterance_reducer, self.utterance_components)
            if not self.utterance_features:
                raise ValueError("utterance_reducer reduces the utterance input: set utterance_features")
        if min(self.time_masks, self.feature_masks, self.feature_mask_width) < 0 or not (
            0.0 <= self.time_mask_fraction <= 1.0
        ):
            raise ValueError(
                "time_masks, feature_masks and feature_mask_width must be >= 0 and time_mask_fraction in [0, 1], got "
                f"{self.time_masks}, {self.feature_masks}, {self.feature_mask_width}, {self.time_mask_fraction}"
            )
        if self.mixup_alpha < 0:
            raise ValueError(f"mixup_alpha is a Beta distribution's parameter: >= 0 (0 is off), got {self.mixup_alpha}")
        if self.utterance_noise < 0:
            raise ValueError(f"utterance_noise is a standard deviation: >= 0, got {self.utterance_noise}")
        if self.refit_ensemble and not self.refit:
            raise ValueError("refit_ensemble averages the early-stopped and the refitted model: set refit")
        check_loss(self.loss)
        if self.imbalance not in ("focal_alpha", "class_weight", "none"):
            raise ValueError(f"imbalance must be 'focal_alpha', 'class_weight' or 'none', got {self.imbalance!r}")

    def feature_augmenter(self) -> FeatureAugmenter | None:
        """The training clips' :class:`~emotion_lib.sequences.augment.FeatureAugmenter` (``None`` without
        ``augment``)."""
        # imported here for the reason the reducer is (__post_init__): the sequences package imports the features one
        from emotion_lib.sequences.augment import FeatureAugmenter

        if not self.augment:
            return None
        return FeatureAugmenter(
            self.noise_std,
            self.scale_range,
            self.tempo_range,
            self.augment_p,
            self.time_masks,
            self.time_mask_fraction,
            self.feature_masks,
            self.feature_mask_width,
        )

    @property
    def input_groups(self) -> tuple[str, ...]:
        """The model's input groups: its modalities, then ``"utterance"`` when the utterance input is on."""
        return self.modalities + (("utterance",) if self.utterance_features else ())

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        values = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {', '.join(unknown)}")
        return cls(**values)

    def save(self, path: Path | str) -> None:
        atomic_write_bytes(path, self.to_json().encode())

    @classmethod
    def load(cls, path: Path | str) -> ModelConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model configuration not found: {path}")
        return cls.from_json(path.read_text())

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)
