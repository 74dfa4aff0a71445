"""One user file to model features: what kind of file it is, and its voice and face features.

Audio files (WAV, FLAC, MP3, OGG) give the voice; videos (MP4, FLV, ...) the voice and the face, a video without
an audio track the face alone; still images (PNG, JPG) one face frame. Features are computed with the library's own
extractors (:func:`~emotion_lib.features.audio.load_audio`, openSMILE, :func:`~emotion_lib.features.video.embed_video`
and the face backend), with the extraction settings the model was trained on. A modality that a file lacks, that is
silent or shows no face is left out with a note naming the file; a file that cannot be read raises an error naming it.
A model with the utterance input also gets the openSMILE functionals of the file's whole audio (one vector), from
the same decoded signal as the frames.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotion_lib.features.audio import AudioError, AudioFeatureExtractor, MediaWarning, check_media_file, load_audio

if TYPE_CHECKING:
    from emotion_lib.features.manifest import UtteranceSpec
    from emotion_lib.features.store import ExtractionConfig

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
VIDEO_SUFFIXES = (".mp4", ".flv", ".avi", ".mov", ".mkv", ".webm")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
KIND_MODALITIES = {"audio": ("audio",), "video": ("audio", "video"), "image": ("video",)}
"""The modalities each kind of file can give."""
SILENCE_RMS = 1e-3
"""Audio whose root-mean-square level is below this is silence (the streaming predictor's default threshold)."""


class InputFileError(ValueError):
    """A file cannot be used for prediction (unsupported type, unreadable image); the message names it."""


def file_kind(path: Path | str) -> str:
    """``'audio'``, ``'video'`` or ``'image'`` from the file's extension; :class:`InputFileError` otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    for kind, suffixes in (("audio", AUDIO_SUFFIXES), ("video", VIDEO_SUFFIXES), ("image", IMAGE_SUFFIXES)):
        if suffix in suffixes:
            return kind
    raise InputFileError(
        f"{path}: unsupported file type {f'{suffix!r}' if suffix else '(no extension)'}; expected audio "
        f"({', '.join(AUDIO_SUFFIXES)}), video ({', '.join(VIDEO_SUFFIXES)}) or an image ({', '.join(IMAGE_SUFFIXES)})"
    )


def read_image(path: Path | str) -> np.ndarray:
    """A still image as a BGR uint8 frame ``(H, W, 3)``; :class:`InputFileError` naming the file if it cannot be."""
    import cv2

    path = Path(path)
    check_media_file(path, "image", InputFileError)
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputFileError(f"{path}: cannot decode the image (corrupt, or not a {path.suffix} file)")
    return frame


@dataclass
class FileFeatures:
    """A file's features in the model's extraction settings; ``None`` for a modality not used."""

    audio: np.ndarray | None = None
    """Voice descriptors ``(T, D)``."""
    video: np.ndarray | None = None
    """Face embeddings ``(T, D)``, zeros where no face was found."""
    video_mask: np.ndarray | None = None
    """``(T,)`` True where a face was found."""
    notes: list[str] = field(default_factory=list)
    """Why a modality was left out, media warnings (truncated file, clipped samples)."""
    utterance: np.ndarray | None = None
    """The utterance vector ``(D,)`` of the file's whole audio, for a model with that input (``None`` when the voice
    is left out)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(name for name in ("audio", "video") if getattr(self, name) is not None)


class FileFeatureExtractor:
    """Extracts the features a model needs from one file at a time, reusing openSMILE and the face backend.

    ``modalities`` are the model's inputs (``audio``, ``video``); only those are extracted. The voice of a video is
    analysed in a worker thread while the faces are embedded. ``face_network`` is a bundle's TFLite copy of the face
    backend's network (``BundleFeatures.face_network``): it runs instead of the backend's own loading while the
    installed network is the one it was converted from (else :attr:`notes` says why it is not used). ``utterance``
    (a bundle's :class:`~emotion_lib.features.manifest.UtteranceSpec`) also computes the utterance vector.
    """

    def __init__(
        self,
        extraction: ExtractionConfig,
        modalities: tuple[str, ...],
        face_network: dict | None = None,
        utterance: UtteranceSpec | None = None,
    ) -> None:
        self.extraction = extraction
        self.modalities = tuple(modalities)
        self.notes: list[str] = []
        self.audio = (
            AudioFeatureExtractor(extraction.audio_feature_set, extraction.audio_level)
            if "audio" in modalities
            else None
        )
        self.utterance = None
        if utterance is not None and self.audio is not None:
            self.utterance = AudioFeatureExtractor(utterance.feature_set, utterance.level)
        if "video" in modalities and not extraction.video_backend:
            raise InputFileError("the model has a face input but its extraction settings name no face backend")
        self.face = self._face_backend(face_network or {}) if "video" in modalities else None
        self._voice_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice-features")

    def _face_backend(self, face_network: dict) -> Any:
        from emotion_lib.features.faces.registry import check_backend, face_backend_spec, get_face_backend
        from emotion_lib.features.manifest import sha256

        name, options = self.extraction.video_backend, self.extraction.backend_kwargs()
        if not face_network or face_network.get("backend") != name:
            return get_face_backend(name, **options)
        backend = face_backend_spec(name).backend
        check_backend(name, **options)
        if face_network.get("options") != dict(self.extraction.backend_options):
            self.notes.append(f"{face_network['file']} was made for other {name} options; not used")
        elif sha256(backend.network_source()) != face_network.get("source_sha256"):
            self.notes.append(
                f"{face_network['file']} was converted from another {face_network.get('source')} than the installed "
                f"{backend.network_source()}: the installed network runs instead (its features, not the bundle's copy)"
            )
        else:
            return backend(**options, lite_model=face_network["file"])
        return get_face_backend(name, **options)

    def dims(self) -> dict[str, int]:
        """Feature width per extracted input (``audio``, ``video``, ``utterance``)."""
        extractors = (("audio", self.audio), ("video", self.face), ("utterance", self.utterance))
        return {name: extractor.dim for name, extractor in extractors if extractor}

    def extract(self, path: Path | str) -> FileFeatures:
        """The features of ``path``; raises (naming the file) when it cannot be read at all."""
        path = Path(path)
        kind = file_kind(path)
        features, voice_notes = FileFeatures(), []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MediaWarning)
            voice = None
            if self.audio is not None and "audio" in KIND_MODALITIES[kind]:  # beside the faces: openSMILE frees the GIL
                voice = self._voice_thread.submit(self._audio, path, kind, voice_notes)
            try:
                if self.face is not None and "video" in KIND_MODALITIES[kind]:
                    features.video, features.video_mask = self._faces(path, kind, features.notes)
            finally:
                if voice is not None:
                    wait([voice])
            features.audio, features.utterance = (None, None) if voice is None else voice.result()
        features.notes[:0] = voice_notes
        features.notes += [str(w.message) for w in caught if issubclass(w.category, MediaWarning)]
        return features

    def _audio(self, path: Path, kind: str, notes: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The voice frames and, with the utterance input, the utterance vector; ``(None, None)`` with a note when
        the voice is left out."""
        try:
            signal = load_audio(path)
        except AudioError as error:
            if kind == "audio":
                raise
            notes.append(f"{error}; voice not used" if str(path) in str(error) else f"{path}: {error}; voice not used")
            return None, None
        rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
        if rms < SILENCE_RMS:
            notes.append(f"{path}: silent audio (RMS {rms:.1e} < {SILENCE_RMS:g}); voice not used")
            return None, None
        frames = self.audio.extract(signal, name=str(path))
        if self.utterance is None:
            return frames, None
        return frames, self.utterance.extract(signal, name=str(path)).reshape(-1)

    def _faces(self, path: Path, kind: str, notes: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        from emotion_lib.features.video import embed_video

        if kind == "image":
            embeddings, mask = self.face.embed([read_image(path)])
        else:
            embeddings, mask, _ = embed_video(path, self.face, self.extraction.fps)
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            where = "the image" if kind == "image" else f"any of the {len(mask)} sampled frames"
            notes.append(f"{path}: no face found in {where}; face not used")
            return None, None
        return np.asarray(embeddings, dtype=np.float32), mask
