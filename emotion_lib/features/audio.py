"""Audio loading (float32 mono at 16 kHz) and openSMILE low-level descriptors or functionals.

WAV, FLAC and MP3 are read with libsndfile, and so is the MP3 track of an FLV video (CREMA-D's), taken out of the
container in process (:func:`flv_mp3_stream`). Other video containers (MP4, WEBM, ...) and anything libsndfile cannot
read are decoded by an ``ffmpeg`` subprocess. Every failure raises :class:`AudioError` with a message naming the file.
A file that decodes to far less than its container declares (a truncated download) or whose samples reach far beyond
full scale still gives its samples, with a :class:`MediaWarning` naming the file.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import struct
import subprocess
import warnings
from collections.abc import Iterator
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
FLV_AUDIO_TAG, FLV_SCRIPT_TAG, FLV_MP3 = 8, 18, 2
MIN_SECONDS = 0.1
"""Shorter signals give openSMILE no complete analysis window (it fills the row with NaN)."""
TRUNCATED_BELOW = 0.9
"""A file that decodes to less than this share of the duration its container declares is reported as truncated."""
CLIPPED_SHARE = 0.001
"""A signal with more than this share of samples beyond full scale ([-1, 1]) is reported as clipped."""
_FFMPEG_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_FFMPEG_FAILED = ("Conversion failed!",)


class AudioError(ValueError):
    """A clip's audio cannot be read or turned into features; the message names the file."""


class NoAudioTrack(AudioError):
    """The file is a readable video without an audio track."""


class MediaWarning(UserWarning):
    """A media file was read, but not as its container describes it (truncated, clipped); the message names it."""


def check_media_file(path: Path, what: str, error: type[ValueError]) -> None:
    """Raise ``error`` naming ``path`` unless it is a non-empty regular file this process can read.

    ``what`` names the expected content in the message (``'audio'``, ``'video'``). A broken link, a folder, a named
    pipe or device, an unreadable or an empty file each get their own message.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        broken = path.is_symlink()
        raise error(f"{path}: {'broken symbolic link' if broken else f'{what} file not found'}") from None
    except OSError as exc:
        raise error(f"{path}: cannot access the {what} file ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file (a named pipe, socket or device)")
    try:
        os.close(os.open(path, os.O_RDONLY))
    except PermissionError:
        raise error(f"{path}: permission denied (the file is not readable)") from None
    if info.st_size == 0:
        raise error(f"{path}: empty file (0 bytes)")


def warn_if_truncated(path: Path | str, decoded: float, declared: float | None, what: str = "audio") -> None:
    """Warn (:class:`MediaWarning`) when ``decoded`` seconds are far below the ``declared`` container duration."""
    if declared is not None and declared > 0 and decoded < TRUNCATED_BELOW * declared:
        warnings.warn(
            f"{path}: looks truncated: {decoded:.2f} s of {what} decoded, its container declares {declared:.2f} s",
            MediaWarning,
            stacklevel=2,
        )


def _ffmpeg_decode(path: Path, sample_rate: int) -> tuple[np.ndarray, float | None]:
    """The audio track decoded by ffmpeg and the duration the container declares (``None`` if it declares none)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            f"{path}: reading {path.suffix or 'this'} audio needs ffmpeg on PATH "
            "(Debian: apt-get install ffmpeg, or `make system-deps`)"
        )
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-i", str(path), "-vn"]
    cmd += ["-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"]
    result = subprocess.run(cmd, capture_output=True, check=False)
    log = result.stderr.decode(errors="replace")
    if " Audio: " not in log and "Stream #" in log and not result.stdout:
        raise NoAudioTrack(f"{path}: no audio track (the file holds only other streams, e.g. video)")
    if result.returncode != 0:
        lines = [line for line in log.strip().splitlines() if line.strip() not in _FFMPEG_FAILED]
        message = lines[-1].strip().removeprefix(f"{path}: ") if lines else "unknown error"
        raise AudioError(f"{path}: ffmpeg cannot decode the audio: {message}")
    found = _FFMPEG_DURATION.search(log)
    declared = None if found is None else 3600 * int(found[1]) + 60 * int(found[2]) + float(found[3])
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32), declared


def _flv_tags(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """``(tag type, payload)`` of each tag of FLV bytes (9-byte header, then tags: 11-byte header, payload,
    4-byte back pointer); a truncated last tag gives what it holds."""
    offset = int.from_bytes(data[5:9], "big") + 4
    while offset + 11 <= len(data):
        size = int.from_bytes(data[offset + 1 : offset + 4], "big")
        yield data[offset] & 0x1F, data[offset + 11 : offset + 11 + size]
        offset += 11 + size + 4


def flv_mp3_stream(path: Path) -> bytes | None:
    """The MP3 frames of an FLV file's audio track, or ``None`` if ``path`` is not an FLV whose audio is MP3.

    An audio tag's payload is one byte of codec flags (upper 4 bits 2 = MP3) followed by MP3 frames.
    """
    data = memoryview(path.read_bytes())
    if len(data) < 13 or bytes(data[:3]) != b"FLV":
        return None
    frames = []
    for kind, payload in _flv_tags(data):
        if kind == FLV_AUDIO_TAG and len(payload) > 1:
            if payload[0] >> 4 != FLV_MP3:
                return None
            frames.append(payload[1:])
    return b"".join(frames) or None


def flv_duration(path: Path) -> float | None:
    """The duration in seconds an FLV file declares in its ``onMetaData`` script tag, or ``None``."""
    with open(path, "rb") as handle:
        data = memoryview(handle.read(64 * 1024))
    if len(data) < 13 or bytes(data[:3]) != b"FLV":
        return None
    for kind, payload in _flv_tags(data):
        if kind != FLV_SCRIPT_TAG:
            continue
        at = bytes(payload).find(b"\x00\x08duration\x00")  # AMF0: key length, key, number marker, float64
        if at >= 0 and at + 19 <= len(payload):
            return struct.unpack(">d", payload[at + 11 : at + 19])[0]
    return None


def _wav_declared_seconds(path: Path) -> float | None:
    """The duration the RIFF/WAVE header's ``data`` chunk declares (libsndfile reports what the file holds)."""
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, block, rate = 12, 0, 0
    while offset + 8 <= len(head):
        chunk, size = head[offset : offset + 4], int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk == b"fmt " and offset + 22 <= len(head):
            rate = int.from_bytes(head[offset + 12 : offset + 16], "little")
            block = int.from_bytes(head[offset + 20 : offset + 22], "little")
        if chunk == b"data":
            unknown = size in (0, 0xFFFFFFFF)  # a streamed WAV that never wrote its length
            return None if unknown or not (block and rate) else size / block / rate
        offset += 8 + size + size % 2
    return None


def _soundfile_decode(path: Path, mp3_track: bytes | None) -> tuple[np.ndarray, int, float | None]:
    """libsndfile's samples ``(n, channels)``, their rate and the duration the file's header declares."""
    with sf.SoundFile(io.BytesIO(mp3_track) if mp3_track else str(path)) as handle:
        signal, rate = handle.read(dtype="float32", always_2d=True), handle.samplerate
        declared = handle.frames / rate if rate else None
    if mp3_track:
        declared = flv_duration(path)
    elif path.suffix.lower() == ".wav":
        declared = _wav_declared_seconds(path)
    return signal, rate, declared


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
    """Read an audio file or a video's audio track as float32 mono at ``sample_rate`` (default 16 kHz).

    Raises :class:`AudioError` naming the file (:class:`NoAudioTrack` for a video without audio); warns
    (:class:`MediaWarning`) when the file decodes to far less than the duration its container declares.
    """
    path = Path(path)
    check_media_file(path, "audio", AudioError)
    suffix = path.suffix.lower()
    mp3_track = flv_mp3_stream(path) if suffix == ".flv" else None
    if suffix in SOUNDFILE_SUFFIXES or mp3_track is not None:
        try:
            signal, rate, declared = _soundfile_decode(path, mp3_track)
        except (sf.LibsndfileError, RuntimeError) as error:  # ffmpeg may still read it
            try:
                (signal, declared), rate = _ffmpeg_decode(path, sample_rate), sample_rate
            except AudioError:
                reason = str(error).replace(f"'{path}'", "the file")
                raise AudioError(f"{path}: cannot decode the audio ({reason})") from error
    else:
        (signal, declared), rate = _ffmpeg_decode(path, sample_rate), sample_rate
    signal = to_mono_16k(signal, rate, sample_rate)
    if signal.size == 0:
        raise AudioError(f"{path}: no audio samples (no audio track or a truncated file)")
    if not np.isfinite(signal).all():
        raise AudioError(f"{path}: the decoded audio contains NaN or infinite samples")
    warn_if_truncated(path, signal.size / sample_rate, declared)
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
        """``(T, D)`` float32 features of a mono signal (``T = 1`` for functionals); ``name`` labels errors.

        Warns (:class:`MediaWarning`) when more than :data:`CLIPPED_SHARE` of the samples are beyond full scale.
        """
        signal = to_mono_16k(signal, sample_rate)
        if signal.size < MIN_SECONDS * SAMPLE_RATE:
            raise AudioError(
                f"{name}: audio too short ({signal.size / SAMPLE_RATE:.3f} s); openSMILE needs at least {MIN_SECONDS} s"
            )
        beyond = np.count_nonzero(np.abs(signal) > 1.0)
        if beyond > CLIPPED_SHARE * signal.size:
            warnings.warn(
                f"{name}: {beyond / signal.size:.1%} of the samples are beyond full scale (peak "
                f"{np.abs(signal).max():.2f}); openSMILE clips them to [-1, 1], so level features saturate",
                MediaWarning,
                stacklevel=2,
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
