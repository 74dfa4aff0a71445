"""Real time: the streaming predictor behind the OpenCV app and the notebook widget, clip replay."""

from emotion_lib.realtime.predictor import Prediction, StreamingPredictor, load_window_model
from emotion_lib.realtime.replay import AudioFeeder, clip_stream, run_clip

__all__ = ["AudioFeeder", "Prediction", "StreamingPredictor", "clip_stream", "load_window_model", "run_clip"]
