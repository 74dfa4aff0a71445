"""Real time: the streaming predictor behind the OpenCV app and the notebook widget, clip replay."""

from emotion_lib.realtime.predictor import Prediction, StreamingPredictor
from emotion_lib.realtime.replay import AudioFeeder, clip_stream, run_clip
from emotion_lib.realtime.window import ModelInputError, WindowModel, load_streaming_model, load_window_model

__all__ = [
    "AudioFeeder",
    "ModelInputError",
    "Prediction",
    "StreamingPredictor",
    "WindowModel",
    "clip_stream",
    "load_streaming_model",
    "load_window_model",
    "run_clip",
]
