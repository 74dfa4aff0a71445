"""Training: the resumable trainer, hardware switches, saving, model bundles and TFLite export."""

from emotion_lib.training.bundle import BundleError, ModelBundle, load_bundle, save_bundle
from emotion_lib.training.export import TFLiteRunner, load_model, save_model, to_tflite
from emotion_lib.training.hardware import Hardware, configure_hardware
from emotion_lib.training.trainer import TrainResult, predict_data, train

__all__ = [
    "BundleError",
    "Hardware",
    "ModelBundle",
    "TFLiteRunner",
    "TrainResult",
    "configure_hardware",
    "load_bundle",
    "load_model",
    "predict_data",
    "save_bundle",
    "save_model",
    "to_tflite",
    "train",
]
