"""Feature extraction: openSMILE voice descriptors, face embeddings, the per-clip cache and normalisation."""

from emotion_lib.features.audio import AudioError, AudioFeatureExtractor, load_audio
from emotion_lib.features.cache import CacheEntryError
from emotion_lib.features.faces import FACE_BACKENDS, BackendUnavailable, get_face_backend
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import (
    ClipFeatures,
    ExtractionConfig,
    ExtractionInterrupted,
    ExtractionReport,
    extract_features,
    load_features,
)
from emotion_lib.features.video import VideoError, read_frames

__all__ = [
    "FACE_BACKENDS",
    "AudioError",
    "AudioFeatureExtractor",
    "BackendUnavailable",
    "CacheEntryError",
    "ClipFeatures",
    "ExtractionConfig",
    "ExtractionInterrupted",
    "ExtractionReport",
    "Normaliser",
    "VideoError",
    "extract_features",
    "get_face_backend",
    "load_audio",
    "load_features",
    "read_frames",
]
