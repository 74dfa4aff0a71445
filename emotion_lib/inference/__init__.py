"""Prediction on files: ``predict("clip.flv", model="av")`` answers what emotion is in any audio, video or image
file, with the pretrained models or any model bundle (``python -m emotion_lib predict`` on the command line)."""

from emotion_lib.inference.api import load_predictor, predict
from emotion_lib.inference.media import InputFileError, file_kind
from emotion_lib.inference.predictor import PRETRAINED_MODELS, FilePredictor, resolve_model
from emotion_lib.inference.results import FilePrediction, Timeline, to_csv, to_json, to_table

__all__ = [
    "PRETRAINED_MODELS",
    "FilePrediction",
    "FilePredictor",
    "InputFileError",
    "Timeline",
    "file_kind",
    "load_predictor",
    "predict",
    "resolve_model",
    "to_csv",
    "to_json",
    "to_table",
]
