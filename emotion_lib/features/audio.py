"""Audio loading (float32 mono at 16 kHz) and openSMILE low-level descriptors or functionals.

WAV, FLAC and MP3 are read with libsndfile; the audio track of video containers (FLV, MP4, WEBM, ...) and
anything libsndfile cannot read is decoded by an ``ffmpeg`` subprocess. Every failure raises
:class:`AudioError` with a message naming the file.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import opensmile
import soundfile as sf
from scipy.signal import resample_poly

from emotion_lib.utils import atomic_write_bytes

SAMPLE_RATE = 16000
FRAME_RATE = 100
"""openSMILE LLDs come at one frame every 10 ms."""
SOUNDFILE_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
FEATURE_SETS = {"eGeMAPSv02": opensmile.FeatureSet.eGeMAPSv02, "ComParE_2016": opensmile.FeatureSet.ComParE_2016}
LEVELS = ("lld", "functionals")
MIN_SECONDS = 0.1
"""Shorter signals give openSMILE no complete analysis window (it fills the row with NaN)."""


_EGEMAPS_LLD_ONLY = r"""
; eGeMAPSv02 low-level descriptors only: opensmile's eGeMAPSv02.conf without its functionals components.
; The LLDs are identical (tests/test_features_audio.py); skipping the functionals saves a few % of the time.
[componentInstances:cComponentManager]
instance[dataMemory].type=cDataMemory
printLevelStats=0
\{\cm[source{?}:include external source]}
\{CONFIG_ROOT/gemaps/v01b/GeMAPSv01b_core.lld.conf.inc}
\{CONFIG_ROOT/egemaps/v02/eGeMAPSv02_core.lld.conf.inc}
[componentInstances:cComponentManager]
instance[lldconcat].type=cVectorConcat
[lldconcat:cVectorConcat]
reader.dmLevel = egemapsv02_lldsetE_smo;egemapsv02_lldsetF_smo
writer.dmLevel = lld
includeSingleElementFields = 1
\{\cm[sink{?}:include external sink]}
"""


def egemaps_lld_config() -> Path:
    """Path of the LLD-only eGeMAPSv02 config, written once (atomically) to the temp directory."""
    root = Path(opensmile.__file__).parent / "core" / "config"
    text = _EGEMAPS_LLD_ONLY.replace("CONFIG_ROOT", root.as_posix()).encode()
    path = Path(tempfile.gettempdir()) / f"emotion_lib_eGeMAPSv02_lld_{hashlib.sha1(text).hexdigest()[:12]}.conf"
    if not path.is_file():
        atomic_write_bytes(path, text)
    return path


class AudioError(ValueError):
    """A clip's audio cannot be read or turned into features; the message names the file."""


def _ffmpeg_decode(path: Path, sample_rate: int) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(f"{path}: reading {path.suffix or 'this'} audio needs ffmpeg on PATH "
                         "(Debian: apt-get install ffmpeg, or `make system-deps`)")
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate),
           "-f", "f32le", "-"]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: ffmpeg cannot decode the audio: {message[-1] if message else 'unknown error'}")
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)


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
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            signal, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:
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
    """openSMILE features of a 16 kHz mono signal.

    ``feature_set='eGeMAPSv02'`` with ``level='lld'`` gives 25 descriptors per 10 ms frame (the default);
    ``'ComParE_2016'`` LLDs come with their deltas (65 + 65 = 130). ``level='functionals'`` gives one row of
    clip statistics (88 for eGeMAPSv02, 6373 for ComParE_2016), the input of the classical baselines.
    """

    def __init__(self, feature_set: str = "eGeMAPSv02", level: str = "lld") -> None:
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"unknown openSMILE feature set {feature_set!r}; expected one of {', '.join(FEATURE_SETS)}")
        if level not in LEVELS:
            raise ValueError(f"unknown feature level {level!r}; expected one of {', '.join(LEVELS)}")
        self.feature_set, self.level = feature_set, level
        levels = [opensmile.FeatureLevel.Functionals] if level == "functionals" else [
            opensmile.FeatureLevel.LowLevelDescriptors]
        if level == "lld" and feature_set == "ComParE_2016":
            levels.append(opensmile.FeatureLevel.LowLevelDescriptors_Deltas)
        if (feature_set, level) == ("eGeMAPSv02", "lld"):
            self._smiles = [opensmile.Smile(feature_set=str(egemaps_lld_config()), feature_level="lld")]
        else:
            self._smiles = [opensmile.Smile(feature_set=FEATURE_SETS[feature_set], feature_level=lvl)
                            for lvl in levels]
        self.feature_names = [name for smile in self._smiles for name in smile.feature_names]

    @property
    def dim(self) -> int:
        """Number of columns of :meth:`extract`'s output."""
        return len(self.feature_names)

    def config(self) -> dict:
        """The settings that determine the output (part of the cache key)."""
        return {"feature_set": self.feature_set, "level": self.level, "dim": self.dim,
                "sample_rate": SAMPLE_RATE, "opensmile": opensmile.__version__}

    def extract(self, signal: np.ndarray, sample_rate: int = SAMPLE_RATE, name: str = "signal") -> np.ndarray:
        """``(T, D)`` float32 features of a mono signal (``T = 1`` for functionals); ``name`` labels errors."""
        signal = to_mono_16k(signal, sample_rate)
        if signal.size < MIN_SECONDS * SAMPLE_RATE:
            raise AudioError(f"{name}: audio too short ({signal.size / SAMPLE_RATE:.3f} s); openSMILE needs at "
                             f"least {MIN_SECONDS} s")
        # Smile.__call__ returns (channels, features, frames) without building a pandas index: faster
        blocks = [np.asarray(smile(signal, SAMPLE_RATE), dtype=np.float32)[0].T for smile in self._smiles]
        frames = min(len(block) for block in blocks)
        features = np.concatenate([block[:frames] for block in blocks], axis=1)
        if not np.isfinite(features).all():
            raise AudioError(f"{name}: openSMILE returned non-finite features ({signal.size / SAMPLE_RATE:.2f} s)")
        return np.ascontiguousarray(features)

    def extract_file(self, path: Path | str) -> np.ndarray:
        """Load ``path`` with :func:`load_audio` and return :meth:`extract`'s features."""
        return self.extract(load_audio(path), SAMPLE_RATE, name=str(path))
