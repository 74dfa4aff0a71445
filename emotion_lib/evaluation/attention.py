"""Attention weights of one clip, for plotting where the model looked."""

from __future__ import annotations

import numpy as np


def clip_attention(
    model, data, index: int, audio_frame_rate: float = 100.0, video_fps: float = 5.0
) -> dict[str, tuple[np.ndarray, float]]:
    """Attention weights over time of one clip of ``data`` (a ``SequenceData``) for each modality of ``model``.

    Returns ``{modality: (weights (T',), frames per second of those weights)}``; audio weights are over the
    Conv1D output steps, so their rate is ``audio_frame_rate / stride`` (the ratio of input to output length).
    """
    from emotion_lib.models.fusion import attention_model

    modalities = tuple(name for name in ("audio", "video") if name in model.input)
    batch = data.make_batch([index], modalities)
    outputs = attention_model(model)(batch, training=False)
    found = {}
    for modality, weights in outputs.items():
        weights = np.asarray(weights)[0]
        frames = batch[modality].shape[1]
        rate = (audio_frame_rate if modality == "audio" else video_fps) * len(weights) / max(frames, 1)
        found[modality] = (weights, rate)
    return found
