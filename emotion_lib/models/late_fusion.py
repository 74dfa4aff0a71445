"""Late fusion of two single-modality models into one audio-visual model (a weighted product of their answers).

:func:`build_late_fusion` wraps an audio model (inputs ``audio``, ``audio_mask``) and a video model (``video``,
``video_mask``), each returning six class probabilities, into one model with all four inputs (and the audio model's
``utterance`` input, one vector per clip, when it has one). The answer is the
softmax of the weighted mean of the two log-probabilities over the modalities present (a modality is present when
its mask has a valid step): with both, ``p ~ p_audio^w * p_video^(1-w)``; with one, exactly that model's answer.
Nothing is trained; the two models keep their weights.
"""

from __future__ import annotations

import keras
from keras import layers, ops

LOG_FLOOR = 1e-6
"""Probabilities are clipped at this value before the logarithm."""


def _present(mask):
    """``(B, 1)``: 1 when the ``(B, T)`` mask has a valid step, else 0."""
    return ops.max(mask, axis=1, keepdims=True)


def build_late_fusion(audio_model: keras.Model, video_model: keras.Model, audio_weight: float = 0.5) -> keras.Model:
    """An audio-visual model answering the weighted product of ``audio_model``'s and ``video_model``'s answers.

    Args:
        audio_model: a model ``{audio (B, T, Da), audio_mask (B, T)} -> (B, C)`` probabilities (optionally with an
            ``utterance (B, Du)`` input too).
        video_model: a model ``{video (B, T, Dv), video_mask (B, T)} -> (B, C)`` probabilities.
        audio_weight: ``w`` in ``(0, 1)``, the weight of the audio log-probabilities when both are present.
    """
    if not 0.0 < audio_weight < 1.0:
        raise ValueError(f"audio_weight must be between 0 and 1 (exclusive), got {audio_weight}")
    inputs = {
        "audio": keras.Input((None, audio_model.input["audio"].shape[-1]), name="audio"),
        "audio_mask": keras.Input((None,), name="audio_mask"),
        "video": keras.Input((None, video_model.input["video"].shape[-1]), name="video"),
        "video_mask": keras.Input((None,), name="video_mask"),
    }
    audio_names = ["audio", "audio_mask"]
    if "utterance" in audio_model.input:
        inputs["utterance"] = keras.Input((audio_model.input["utterance"].shape[-1],), name="utterance")
        audio_names.append("utterance")
    audio = audio_model({name: inputs[name] for name in audio_names})
    video = video_model({"video": inputs["video"], "video_mask": inputs["video_mask"]})
    audio_share = _present(inputs["audio_mask"]) * audio_weight
    video_share = _present(inputs["video_mask"]) * (1.0 - audio_weight)
    scores = audio_share * ops.log(ops.maximum(audio, LOG_FLOOR)) + video_share * ops.log(ops.maximum(video, LOG_FLOOR))
    scores = scores / ops.maximum(audio_share + video_share, LOG_FLOOR)
    outputs = layers.Activation("softmax", dtype="float32", name="emotion")(scores)
    return keras.Model(inputs, outputs, name="audio_video_late_fusion")
