"""Probabilities over time for one file, from the real-time code.

The clip is replayed through a :class:`~emotion_lib.realtime.predictor.StreamingPredictor` built on the already
loaded model (no smoothing, so each row is one window's own probabilities). A video is replayed frame by frame
(:func:`~emotion_lib.realtime.replay.run_clip`); an audio file is fed in steps of one face-frame period, as a
microphone would be. For a model with the utterance input each row's utterance vector is the functionals of that
window's audio (what the streaming predictor feeds live), not of the whole clip (what the file's own answer uses)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emotion_lib.inference.results import Timeline
from emotion_lib.labels import EMOTIONS
from emotion_lib.realtime.predictor import SAMPLE_RATE, Prediction, StreamingPredictor
from emotion_lib.realtime.replay import run_clip

if TYPE_CHECKING:
    from emotion_lib.inference.predictor import FilePredictor


def streaming_predictor(predictor: FilePredictor) -> StreamingPredictor:
    """A streaming predictor sharing ``predictor``'s model, extractors, normalisers and extraction settings."""
    audio, utterance = predictor.features.audio, predictor.features.utterance
    return StreamingPredictor(
        predictor.window_model,
        predictor.window_frames,
        face_backend=predictor.features.face,
        audio_extractor=None if audio is None else audio.extract,
        smoothing=0.0,
        normalisers=predictor.normalisers,
        extraction=predictor.extraction,
        utterance=None if utterance is None else utterance.extract,
    )


def audio_updates(streaming: StreamingPredictor, path: Path | str) -> list[Prediction]:
    """Feed an audio file to ``streaming`` one face-frame period at a time; a prediction after each step."""
    from emotion_lib.features.audio import load_audio

    signal = load_audio(path)
    step = max(1, int(round(SAMPLE_RATE / streaming.video_fps)))
    updates = []
    for start in range(0, signal.size, step):
        streaming.push_audio(signal[start : start + step])
        updates.append(streaming.predict(min(start + step, signal.size) / SAMPLE_RATE))
    return updates


def clip_timeline(predictor: FilePredictor, path: Path | str, kind: str) -> Timeline:
    """The timeline of an audio or video file (the windows with neither a face nor a voice are left out)."""
    streaming = streaming_predictor(predictor)
    updates = audio_updates(streaming, path) if kind == "audio" else run_clip(streaming, path)
    updates = [update for update in updates if update.updated]
    if not updates:
        return Timeline(np.zeros(0), np.zeros((0, len(EMOTIONS))))
    return Timeline(
        np.array([u.timestamp for u in updates]), np.stack([u.raw_probabilities for u in updates]).astype(np.float64)
    )
