"""Audio loading (float32 mono at 16 kHz) and openSMILE low-level descriptors or functionals.

WAV, FLAC and MP3 are read with libsndfile, and so is the MP3 track of an FLV video (CREMA-D's), taken out of the
container in process (:func:`flv_mp3_stream`). Other video containers (MP4, WEBM, ...) and anything libsndfile cannot
read are decoded by an ``ffmpeg`` subprocess. Every failure raises :class:`AudioError` with a message naming the file.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import opensmile
import soundfile as sf
from scipy.signal import resample_poly

from emotion_lib.features.smile import CONFIG_ROOT, SmileEngine, lean_config

SAMPLE_RATE = 16000
FRAME_RATE = 100
"""openSMILE LLDs come at one frame every 10 ms."""
SOUNDFILE_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
FEATURE_SETS = {"eGeMAPSv02": opensmile.FeatureSet.eGeMAPSv02, "ComParE_2016": opensmile.FeatureSet.ComParE_2016}
LEVELS = ("lld", "functionals")
SINK_LEVELS = {
    ("eGeMAPSv02", "lld"): ("lld",),
    ("ComParE_2016", "lld"): ("lld", "lld_de"),
    ("eGeMAPSv02", "functionals"): ("func",),
    ("ComParE_2016", "functionals"): ("func",),
}
"""The openSMILE data-memory levels read for each (feature set, level): ComParE LLDs come with their deltas."""
LOADER_VERSION = 2
"""Bumped when :func:`load_audio` gives different samples for a file (2: FLV audio decoded by libsndfile and
resampled like every other file, instead of by ffmpeg); part of the feature cache key."""
FLV_AUDIO_TAG, FLV_MP3 = 8, 2
MIN_SECONDS = 0.1
"""Shorter signals give openSMILE no complete analysis window (it fills the row with NaN)."""


class AudioError(ValueError):
    """A clip's audio cannot be read or turned into features; the message names the file."""


def _ffmpeg_decode(path: Path, sample_rate: int) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            f"{path}: reading {path.suffix or 'this'} audio needs ffmpeg on PATH "
            "(Debian: apt-get install ffmpeg, or `make system-deps`)"
        )
    cmd = [
        ffmpeg,
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-f",
        "f32le",
        "-",
    ]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: ffmpeg cannot decode the audio: {message[-1] if message else 'unknown error'}")
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)


def flv_mp3_stream(path: Path) -> bytes | None:
    """The MP3 frames of an FLV file's audio track, or ``None`` if ``path`` is not an FLV whose audio is MP3.

    An FLV file is a 9-byte header and a chain of tags (11-byte header, payload, 4-byte back pointer); an audio
    tag's payload is one byte of codec flags (upper 4 bits 2 = MP3) followed by MP3 frames. A truncated last tag
    gives what it holds.
    """
    data = memoryview(path.read_bytes())
    if len(data) < 13 or bytes(data[:3]) != b"FLV":
        return None
    offset, frames = int.from_bytes(data[5:9], "big") + 4, []
    while offset + 11 <= len(data):
        size = int.from_bytes(data[offset + 1 : offset + 4], "big")
        payload = data[offset + 11 : offset + 11 + size]
        if data[offset] & 0x1F == FLV_AUDIO_TAG and len(payload) > 1:
            if payload[0] >> 4 != FLV_MP3:
                return None
            frames.append(payload[1:])
        offset += 11 + size + 4
    return b"".join(frames) or None


def to_mono_16k(signal: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Average the channels of a ``(n,)`` or ``(n, channels)`` signal and resample it to ``target_rate``."""
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim == 2:
        signal = signal.mean(axis=1)
    if sample_rate != target_rate:
        divisor = gcd(int(sample_rate), int(target_rate))
        signal = resample_poly(signal, target_rate // divisor, int(sample_rate) // divisor).astype(np.float32)
    return np.ascontiguousarray(signal, dtype=np.float32)


def load_audio(path: Path | str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file or a video's audio track as float32 mono at ``sample_rate`` (default 16 kHz)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    suffix = path.suffix.lower()
    mp3_track = flv_mp3_stream(path) if suffix == ".flv" else None
    if suffix in SOUNDFILE_SUFFIXES or mp3_track is not None:
        try:
            signal, rate = sf.read(io.BytesIO(mp3_track) if mp3_track else str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:  # ffmpeg may still read it
            try:
                signal, rate = _ffmpeg_decode(path, sample_rate), sample_rate
            except AudioError:
                raise AudioError(f"{path}: cannot decode the audio ({error})") from error
    else:
        signal, rate = _ffmpeg_decode(path, sample_rate), sample_rate
    signal = to_mono_16k(signal, rate, sample_rate)
    if signal.size == 0:
        raise AudioError(f"{path}: no audio samples (no audio track or a truncated file)")
    if not np.isfinite(signal).all():
        raise AudioError(f"{path}: the decoded audio contains NaN or infinite samples")
    return signal


class AudioFeatureExtractor:
    """openSMILE features of a 16 kHz mono signal, computed by one reused :class:`~.smile.SmileEngine`.

    ``feature_set='eGeMAPSv02'`` with ``level='lld'`` gives 25 descriptors per 10 ms frame (the default);
    ``'ComParE_2016'`` LLDs come with their deltas (65 + 65 = 130). ``level='functionals'`` gives one row of
    clip statistics (88 for eGeMAPSv02, 6373 for ComParE_2016), the input of the classical baselines.
    """

    def __init__(self, feature_set: str = "eGeMAPSv02", level: str = "lld") -> None:
        if feature_set not in FEATURE_SETS:
            raise ValueError(
                f"unknown openSMILE feature set {feature_set!r}; expected one of {', '.join(FEATURE_SETS)}"
            )
        if level not in LEVELS:
            raise ValueError(f"unknown feature level {level!r}; expected one of {', '.join(LEVELS)}")
        self.feature_set, self.level = feature_set, level
        sink_levels = SINK_LEVELS[feature_set, level]
        config = CONFIG_ROOT / f"{FEATURE_SETS[feature_set].value}.conf"
        self._engine = SmileEngine(lean_config(config, sink_levels), sink_levels, SAMPLE_RATE)
        self.feature_names = self._engine.feature_names

    def __reduce__(self) -> tuple:
        """Pickled as its settings (the openSMILE engine is rebuilt), so it can be sent to worker processes."""
        return AudioFeatureExtractor, (self.feature_set, self.level)

    @property
    def dim(self) -> int:
        """Number of columns of :meth:`extract`'s output."""
        return len(self.feature_names)

    def config(self) -> dict:
        """The settings that determine the output (the feature store's cache key holds them too)."""
        return {
            "feature_set": self.feature_set,
            "level": self.level,
            "dim": self.dim,
            "sample_rate": SAMPLE_RATE,
            "opensmile": opensmile.__version__,
            "loader": LOADER_VERSION,
        }

    def extract(self, signal: np.ndarray, sample_rate: int = SAMPLE_RATE, name: str = "signal") -> np.ndarray:
        """``(T, D)`` float32 features of a mono signal (``T = 1`` for functionals); ``name`` labels errors."""
        signal = to_mono_16k(signal, sample_rate)
        if signal.size < MIN_SECONDS * SAMPLE_RATE:
            raise AudioError(
                f"{name}: audio too short ({signal.size / SAMPLE_RATE:.3f} s); openSMILE needs at least {MIN_SECONDS} s"
            )
        features = self._engine(signal)
        if len(features) == 0:
            raise AudioError(f"{name}: openSMILE gave no frame ({signal.size / SAMPLE_RATE:.3f} s)")
        if not np.isfinite(features).all():
            raise AudioError(f"{name}: openSMILE returned non-finite features ({signal.size / SAMPLE_RATE:.2f} s)")
        return np.ascontiguousarray(features)

    def extract_file(self, path: Path | str) -> np.ndarray:
        """Load ``path`` with :func:`load_audio` and return :meth:`extract`'s features."""
        return self.extract(load_audio(path), SAMPLE_RATE, name=str(path))
