"""Training: the resumable trainer, hardware switches, saving and TFLite export."""

from emotion_lib.training.export import TFLiteRunner, load_model, save_model, to_tflite
from emotion_lib.training.hardware import Hardware, configure_hardware
from emotion_lib.training.trainer import TrainResult, predict_data, train

__all__ = [
    "Hardware",
    "TFLiteRunner",
    "TrainResult",
    "configure_hardware",
    "load_model",
    "predict_data",
    "save_model",
    "to_tflite",
    "train",
]
