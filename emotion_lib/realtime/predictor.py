"""Streaming emotion prediction: a sliding window of face embeddings and audio LLDs, updated as frames arrive.

The window holds ``window_size`` face-embedding frames sampled at ``video_fps`` (the rate the model was trained
on) and the audio low-level descriptors (100 frames/s) covering the same seconds. Each sampled camera frame
updates the window and the prediction; the other camera frames cost nothing. A frame without a face keeps
its place and is masked; silence is flagged. Bad models give a :class:`ModelInputError` naming the shapes.
A model with the utterance input gets the openSMILE functionals of the window's audio (the last window's seconds of
microphone samples), normalised with the bundle's training statistics; zeros (the training mean) while that audio is
silent, shorter than openSMILE's minimum or absent (LLDs pushed directly).
:meth:`StreamingPredictor.from_path` opens a model bundle folder with its normalisers and extraction settings.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotion_lib.labels import EMOTIONS
from emotion_lib.realtime.window import ModelInputError, WindowModel, load_streaming_model

if TYPE_CHECKING:
    from emotion_lib.features.manifest import UtteranceSpec
    from emotion_lib.features.store import ExtractionConfig

AUDIO_FRAME_RATE = 100.0
"""openSMILE LLD frames per second (10 ms hop)."""
SAMPLE_RATE = 16_000

AudioExtractor = Callable[[np.ndarray, int], np.ndarray]
"""``(mono float32 signal, sample rate) -> (T, D)`` LLD frames at 100 frames/s."""


@dataclass(frozen=True)
class Prediction:
    """One update of the streaming predictor."""

    probabilities: np.ndarray
    """Smoothed class probabilities in :data:`EMOTIONS` order."""
    raw_probabilities: np.ndarray
    """This window's probabilities before smoothing."""
    timestamp: float
    face_found: bool
    """A face was found in the latest sampled frame."""
    face_fraction: float
    """Share of the window's frames with a face."""
    silent: bool
    """The window's audio is silent or absent."""
    updated: bool = True
    """False when the window had nothing to predict from and the previous probabilities were kept."""

    @property
    def label(self) -> str:
        return EMOTIONS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    @property
    def message(self) -> str:
        """A short status for the display: empty when face and voice are both present."""
        parts = []
        if not self.face_found:
            parts.append("no face in view")
        if self.silent:
            parts.append("silence")
        if not self.updated:
            parts.append("waiting for a face or a voice")
        return "; ".join(parts)


def _default_extraction() -> ExtractionConfig:
    from emotion_lib.features.store import ExtractionConfig

    return ExtractionConfig()


class StreamingPredictor:
    """Sliding-window emotion predictor over face embeddings and audio LLDs.

    ``extraction`` is the feature extraction the model was trained on (default: ``ExtractionConfig()``, i.e.
    dlib faces at 5 frames/s and eGeMAPSv02 LLDs); it gives the defaults of ``video_fps`` (the face-frame rate),
    ``face_backend`` (a backend object, or a name created on first use) and ``audio_extractor``. Feed camera
    frames with :meth:`push_frame` (timestamps in seconds) and microphone samples with :meth:`push_audio`;
    :meth:`update` does both and returns a :class:`Prediction` whenever a sampled frame changed the window.
    ``smoothing`` in [0, 1) is the weight of the previous probabilities in an exponential moving average.
    ``utterance`` is the utterance vector's extractor for a model with that input: a callable
    ``(signal, sample_rate) -> (1, D)``, or a bundle's :class:`~emotion_lib.features.manifest.UtteranceSpec` (its
    openSMILE extractor is created on first use).
    """

    def __init__(
        self,
        model: WindowModel | Any,
        window_size: int = 30,
        *,
        video_fps: float | None = None,
        face_backend: Any | str | None = None,
        audio_extractor: AudioExtractor | None = None,
        smoothing: float = 0.5,
        audio_hop_s: float = 0.2,
        silence_rms: float = 1e-3,
        normalisers: Mapping[str, Any] | None = None,
        extraction: ExtractionConfig | None = None,
        utterance: AudioExtractor | UtteranceSpec | None = None,
    ) -> None:
        if window_size < 1:
            raise ValueError(f"window_size must be at least 1, got {window_size}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.extraction = _default_extraction() if extraction is None else extraction
        video_fps = self.extraction.fps if video_fps is None else video_fps
        if video_fps <= 0:
            raise ValueError(f"video_fps must be positive, got {video_fps}")
        self.model = model if isinstance(model, WindowModel) else WindowModel(model)
        self.window_size = int(window_size)
        self.video_fps = float(video_fps)
        self.window_seconds = self.window_size / self.video_fps
        self.audio_steps = max(1, round(self.window_seconds * AUDIO_FRAME_RATE))
        self._check_time_steps()
        self.smoothing = float(smoothing)
        self.silence_rms = float(silence_rms)
        self.normalisers = dict(normalisers or {})
        self._face_backend = self.extraction.video_backend if face_backend is None else face_backend
        self._audio_extractor = audio_extractor
        self._utterance = utterance
        self._audio_hop = max(160, int(audio_hop_s * SAMPLE_RATE))
        self._context = 1600  # 0.1 s of audio before each hop so the LLD filters are warmed up
        self._lock = threading.Lock()  # push_audio may run in an AudioFeeder thread
        self.reset()

    @classmethod
    def from_path(cls, path: str | Path, window_size: int = 30, **kwargs: Any) -> StreamingPredictor:
        """A predictor for the model bundle folder (or bare ``.keras`` / ``.tflite`` model) at ``path``.

        A bundle (notebook 04 writes one with ``save_bundle``) brings the feature normalisers fitted on the
        training actors, so live features are scaled as the training features were, and the extraction settings
        (face backend, frame rate, audio feature set). Keyword arguments override them; ``None`` values keep them.
        """
        model, bundle = load_streaming_model(path)
        if bundle is not None:
            settings = {"normalisers": bundle.normalisers, "extraction": bundle.extraction}
            settings["utterance"] = bundle.utterance
            for name, value in settings.items():
                if kwargs.get(name) is None:
                    kwargs[name] = value
        return cls(model, window_size, **kwargs)

    def _check_time_steps(self) -> None:
        for modality, steps in (("video", self.window_size), ("audio", self.audio_steps)):
            fixed = self.model.time_steps(modality)
            if fixed is not None and fixed != steps:
                raise ModelInputError(
                    f"model input {modality!r} expects {fixed} time steps but the streaming window gives {steps} "
                    f"(window_size={self.window_size}, video_fps={self.video_fps})"
                )

    def reset(self) -> None:
        """Forget the window, the audio buffers and the smoothed probabilities."""
        self._video: deque[tuple[np.ndarray, bool]] = deque(maxlen=self.window_size)
        self._lld: deque[np.ndarray] = deque(maxlen=self.audio_steps)
        self._recent_audio = np.zeros(0, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._context_audio = np.zeros(self._context, np.float32)
        self._audio_seen = False
        self._audio_pushes = 0
        self._utterance_cache: tuple[int, np.ndarray] | None = None
        self._next_due: float | None = None
        self._smoothed: np.ndarray | None = None
        self._last_face = False

    @property
    def face_backend(self) -> Any:
        """The face backend, created on first use; its width must be the model's video input width."""
        if self._face_backend is None and self.model.feature_dim("video") is not None:
            raise ModelInputError("the model has a video input but no face backend was given or saved with it")
        if isinstance(self._face_backend, str):
            from emotion_lib.features.faces.registry import get_face_backend

            name = self._face_backend
            same = name == self.extraction.video_backend
            backend = get_face_backend(name, **(self.extraction.backend_kwargs() if same else {}))
            expected = self.model.feature_dim("video")
            if expected is not None and getattr(backend, "dim", expected) != expected:
                raise ModelInputError(
                    f"the model expects {expected}-d face features but the {name!r} backend gives {backend.dim}: "
                    "use the face backend the model was trained with"
                )
            self._face_backend = backend
        return self._face_backend

    @property
    def audio_extractor(self) -> AudioExtractor:
        if self._audio_extractor is None:
            from emotion_lib.features.audio import AudioFeatureExtractor

            self._audio_extractor = AudioFeatureExtractor(
                self.extraction.audio_feature_set, self.extraction.audio_level
            ).extract
        return self._audio_extractor

    @property
    def utterance_extractor(self) -> AudioExtractor:
        """The utterance vector's extractor (created on first use from a bundle's utterance entry)."""
        if self._utterance is None:
            raise ModelInputError("the model has an utterance input but no utterance extractor was given or saved")
        if not callable(self._utterance):
            from emotion_lib.features.audio import AudioFeatureExtractor

            self._utterance = AudioFeatureExtractor(self._utterance.feature_set, self._utterance.level).extract
        return self._utterance

    # ---- audio -------------------------------------------------------------------------------------------
    def push_audio(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> int:
        """Append microphone samples (mono or (n, channels)); returns how many LLD frames were added."""
        if self.model.feature_dim("audio") is None:
            return 0
        signal = np.asarray(samples, dtype=np.float32)
        if signal.ndim == 2:
            signal = signal.mean(axis=1)
        if signal.ndim != 1:
            raise ModelInputError(f"audio must be mono (n,) or (n, channels), got shape {np.shape(samples)}")
        if sample_rate != SAMPLE_RATE and signal.size:
            from scipy.signal import resample_poly

            g = math.gcd(int(sample_rate), SAMPLE_RATE)
            signal = resample_poly(signal, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
        signal = np.nan_to_num(signal, nan=0.0, posinf=0.0, neginf=0.0)
        self._audio_seen = True
        self._audio_pushes += 1
        keep = int(self.window_seconds * SAMPLE_RATE)
        self._recent_audio = np.concatenate([self._recent_audio, signal])[-keep:]
        self._pending = np.concatenate([self._pending, signal])
        added = 0
        while self._pending.size >= self._audio_hop:
            added += self._extract_hop()
        return added

    def _extract_hop(self) -> int:
        hop, self._pending = self._pending[: self._audio_hop], self._pending[self._audio_hop :]
        segment = np.concatenate([self._context_audio, hop])
        self._context_audio = segment[-self._context :]
        try:
            lld = np.asarray(self.audio_extractor(segment, SAMPLE_RATE), dtype=np.float32)
        except ValueError:  # e.g. openSMILE gives no finite descriptors for this hop: it stays out of the window
            return 0
        new_frames = min(hop.size // int(SAMPLE_RATE / AUDIO_FRAME_RATE), lld.shape[0])
        self.push_lld(lld[lld.shape[0] - new_frames :])
        return new_frames

    def push_lld(self, lld: np.ndarray) -> None:
        """Append precomputed audio LLD frames ``(T, D)``."""
        lld = np.asarray(lld, dtype=np.float32)
        expected = self.model.feature_dim("audio")
        if lld.ndim != 2 or (expected is not None and lld.shape[1] != expected):
            raise ModelInputError(f"audio features have shape {lld.shape}; the model expects (T, {expected})")
        lld = np.nan_to_num(lld)
        if "audio" in self.normalisers:
            lld = self.normalisers["audio"].transform(lld)
        with self._lock:
            self._audio_seen = True
            self._lld.extend(lld)

    # ---- video -------------------------------------------------------------------------------------------
    def push_frame(self, frame: np.ndarray, timestamp: float) -> bool:
        """Offer a camera frame (H, W, 3) uint8 BGR; embed it when it is due at ``video_fps``.

        A frame up to a quarter period early counts as due, so capture jitter does not halve the rate.

        Returns True when the frame was sampled and the window changed.
        """
        period = 1.0 / self.video_fps
        if self._next_due is not None and timestamp < self._next_due - 0.25 * period:
            return False
        late = self._next_due is None or timestamp > self._next_due + period
        self._next_due = (timestamp if late else self._next_due) + period
        if self.model.feature_dim("video") is None:
            return True
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ModelInputError(f"a camera frame must be (H, W, 3) uint8 BGR, got {frame.shape} {frame.dtype}")
        emb, mask = self.face_backend.embed(frame[None])
        self.push_embedding(np.asarray(emb)[0], bool(np.asarray(mask)[0]))
        return True

    def push_embedding(self, embedding: np.ndarray, face_found: bool) -> None:
        """Append one precomputed face-embedding frame (zeros and ``face_found=False`` when no face)."""
        embedding = np.asarray(embedding, dtype=np.float32).reshape(-1)
        expected = self.model.feature_dim("video")
        if expected is not None and embedding.shape[0] != expected:
            raise ModelInputError(
                f"face embedding has {embedding.shape[0]} values; the model expects {expected} "
                "(is the face backend the one the model was trained with?)"
            )
        face_found = bool(face_found) and bool(np.all(np.isfinite(embedding)))
        if face_found and "video" in self.normalisers:
            embedding = self.normalisers["video"].transform(embedding[None])[0]
        self._video.append((embedding if face_found else np.zeros_like(embedding), face_found))
        self._last_face = face_found

    # ---- prediction --------------------------------------------------------------------------------------
    def window_inputs(self) -> dict[str, np.ndarray]:
        """The current window as the model's batch of one: valid frames first, then masked padding."""
        inputs: dict[str, np.ndarray] = {}
        video_dim = self.model.feature_dim("video")
        if video_dim is not None:
            video = np.zeros((1, self.window_size, video_dim), np.float32)
            mask = np.zeros((1, self.window_size), np.float32)
            for i, (emb, found) in enumerate(self._video):
                video[0, i] = emb
                mask[0, i] = float(found)
            inputs["video"], inputs["video_mask"] = video, mask
        audio_dim = self.model.feature_dim("audio")
        if audio_dim is not None:
            audio = np.zeros((1, self.audio_steps, audio_dim), np.float32)
            mask = np.zeros((1, self.audio_steps), np.float32)
            with self._lock:
                rows = list(self._lld)
            if rows:
                audio[0, : len(rows)] = np.stack(rows)
                mask[0, : len(rows)] = 1.0
            inputs["audio"], inputs["audio_mask"] = audio, mask
        if self.model.feature_dim("utterance") is not None:
            inputs["utterance"] = self.utterance_input()
        return inputs

    def utterance_input(self) -> np.ndarray:
        """The utterance input ``(1, D)``: the functionals of the window's audio, normalised; zeros (the training
        mean) while that audio is silent, too short for openSMILE or absent. Computed once per new audio."""
        if self._utterance_cache is not None and self._utterance_cache[0] == self._audio_pushes:
            return self._utterance_cache[1]
        vector = np.zeros((1, self.model.feature_dim("utterance")), np.float32)
        recent = self._recent_audio
        if recent.size and not self.silent:
            try:
                vector = np.asarray(self.utterance_extractor(recent, SAMPLE_RATE), np.float32).reshape(1, -1)
            except ValueError:  # too short, or no finite functionals: the window has no utterance vector yet
                pass
            else:
                if "utterance" in self.normalisers:
                    vector = self.normalisers["utterance"].transform(vector)
        self._utterance_cache = (self._audio_pushes, vector)
        return vector

    @property
    def silent(self) -> bool:
        """No audio yet, or the window's audio is below ``silence_rms``."""
        if not self._audio_seen or self._recent_audio.size == 0:
            return not self._lld
        return float(np.sqrt(np.mean(self._recent_audio**2))) < self.silence_rms

    def predict(self, timestamp: float = 0.0) -> Prediction:
        """Run the model on the current window and return the smoothed prediction."""
        inputs = self.window_inputs()
        has_video = "video_mask" in inputs and inputs["video_mask"].any()
        has_audio = "audio_mask" in inputs and inputs["audio_mask"].any()
        face_fraction = float(np.mean([f for _, f in self._video])) if self._video else 0.0
        previous = self._smoothed if self._smoothed is not None else np.full(len(EMOTIONS), 1 / len(EMOTIONS))
        if not (has_video or has_audio):
            return Prediction(previous, previous, timestamp, self._last_face, face_fraction, self.silent, False)
        raw = self.model(inputs)
        if not np.all(np.isfinite(raw)):
            raise ModelInputError("the model returned non-finite probabilities for this window")
        raw = raw / raw.sum() if raw.min() >= 0 and raw.sum() > 0 else _softmax(raw)
        self._smoothed = raw if self._smoothed is None else self.smoothing * self._smoothed + (1 - self.smoothing) * raw
        return Prediction(self._smoothed.copy(), raw, timestamp, self._last_face, face_fraction, self.silent)

    def update(
        self,
        frame: np.ndarray | None,
        timestamp: float,
        audio: np.ndarray | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> Prediction | None:
        """Push audio then a frame; return a new prediction when the frame was sampled, else None."""
        if audio is not None and np.size(audio):
            self.push_audio(audio, sample_rate)
        if frame is None or not self.push_frame(frame, timestamp):
            return None
        return self.predict(timestamp)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()
