"""Reading audio and video inputs (formats, rates, channels, damaged files), and the media writers that the
other ``test_features_*`` modules import to build their inputs in ``tmp_path``."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from emotion_lib.data.synthetic import FACE_CUES, FRAME_SIZE, draw_face, make_actors
from emotion_lib.features import audio
from emotion_lib.features.audio import SAMPLE_RATE, AudioError, MediaWarning, NoAudioTrack, load_audio
from emotion_lib.features.video import VideoError, iter_frames, read_frames

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make system-deps)")


def voice(seconds: float, rate: int = SAMPLE_RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: a gliding harmonic tone with syllable-rate amplitude and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
    signal = 0.2 * tone + 0.003 * rng.standard_normal(t.size)
    signal = np.stack([signal * (1 - 0.3 * c) for c in range(channels)], axis=1) if channels > 1 else signal
    return signal.astype(np.float32)


def write_audio(path: Path, seconds: float, rate: int = SAMPLE_RATE, channels: int = 1, seed: int = 0) -> Path:
    """Write :func:`voice` to ``path`` (format from the suffix: .wav, .flac)."""
    sf.write(path, voice(seconds, rate, channels, seed), rate)
    return path


def face_frame(actor: int = 0, size: int = FRAME_SIZE) -> np.ndarray:
    """One drawn face (an actor of the synthetic corpus, neutral, facing the camera), BGR ``size x size``."""
    frame = draw_face(make_actors(max(3, actor + 1), 0)[actor], FACE_CUES["neutral"], 0.2, (0.0, 0.0, 0.0))
    return frame if size == frame.shape[0] else cv2.resize(frame, (size, size))


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write BGR (or greyscale 2-D) frames with OpenCV's mp4v codec."""
    grey = frames[0].ndim == 2
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height), not grey)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def truncate(path: Path, keep: float = 0.4) -> Path:
    """Cut a file to ``keep`` of its bytes (a download interrupted midway)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# --- audio ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate,channels", [(8000, 1), (16000, 1), (48000, 2), (44100, 2)])
def test_load_audio_resamples_to_16k_mono(tmp_path, rate, channels):
    path = write_audio(tmp_path / f"clip_{rate}_{channels}.wav", 1.5, rate, channels)
    signal = load_audio(path)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert abs(signal.size - 1.5 * SAMPLE_RATE) <= 2
    reference = voice(1.5)  # channel average of the stereo test signal is 0.85x channel 0
    gain = 0.85 if channels == 2 else 1.0
    # the content survives resampling: strong correlation with the 16 kHz original
    assert np.corrcoef(signal[200:-200], gain * reference[200:-200])[0, 1] > 0.95


def test_load_audio_flac_equals_wav(tmp_path):
    wav = load_audio(write_audio(tmp_path / "a.wav", 1.0))
    flac = load_audio(write_audio(tmp_path / "a.flac", 1.0))
    np.testing.assert_allclose(wav, flac, atol=1e-4)  # both 16-bit PCM


@pytest.mark.parametrize(
    "content,message", [(b"", "empty file"), (b"RIFF\x10\x00\x00\x00WAVEjunkjunk" * 3, "cannot decode")]
)
def test_load_audio_empty_and_corrupt_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_load_audio_truncated_wav_keeps_what_is_there(tmp_path):
    path = truncate(write_audio(tmp_path / "cut.wav", 2.0), keep=0.5)
    with pytest.warns(MediaWarning, match="looks truncated"):
        signal = load_audio(path)
    assert 0.8 * SAMPLE_RATE < signal.size < 1.2 * SAMPLE_RATE


def test_load_audio_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nothing.wav")


def special_file(tmp_path: Path, kind: str, name: str) -> Path:
    """A path named like a clip that is a folder, a named pipe, a broken link or an unreadable file."""
    path = tmp_path / name
    if kind == "folder":
        path.mkdir()
    elif kind == "pipe":
        os.mkfifo(path)
    elif kind == "broken link":
        path.symlink_to(tmp_path / "gone.bin")
    else:
        path.write_bytes(b"RIFF" + bytes(100))
        path.chmod(0)
    return path


def deny_reading(monkeypatch, path: Path) -> None:
    """Make ``path`` unreadable even to root (who reads a mode-000 file): opening it fails like for other users."""
    if os.geteuid() != 0:
        return
    real_open = os.open

    def denying_open(target, *args, **kwargs):
        if Path(target) == path:
            raise PermissionError(13, "Permission denied", str(target))
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(os, "open", denying_open)


SPECIAL_FILES = [
    ("folder", "is a folder"),
    ("pipe", "not a regular file"),
    ("broken link", "broken symbolic link"),
    ("unreadable", "permission denied"),
]


@pytest.mark.parametrize("kind,message", SPECIAL_FILES)
@pytest.mark.parametrize("reader,error,suffix", [(load_audio, AudioError, ".wav"), (read_frames, VideoError, ".mp4")])
def test_a_path_that_is_no_file_to_read_gets_a_true_reason(tmp_path, monkeypatch, kind, message, reader, error, suffix):
    path = special_file(tmp_path, kind, f"clip{suffix}")
    if kind == "unreadable":
        deny_reading(monkeypatch, path)
    with pytest.raises(error, match=message) as info:
        reader(path)
    assert str(info.value).count(str(path)) == 1


@pytest.mark.parametrize("suffix", [".wav", ".mp3", pytest.param(".mp4", marks=needs_ffmpeg)])
def test_an_undecodable_file_is_named_once(tmp_path, suffix):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(AudioError, match="cannot decode") as info:
        load_audio(path)
    assert str(info.value).count(str(path)) == 1


@needs_ffmpeg
def test_load_audio_from_video_container_without_audio_track(tmp_path):
    path = write_video(tmp_path / "silent_film.mp4", [face_frame()] * 5)
    with pytest.raises(NoAudioTrack, match="no audio track") as info:
        load_audio(path)
    assert str(info.value).startswith(f"{path}: ") and "Output file" not in str(info.value)


def test_flv_mp3_track_is_read_in_process(crema_d_dir, monkeypatch):
    flv = sorted((crema_d_dir / "VideoFlash").glob("*.flv"))[0]
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)  # no ffmpeg: the FLV must not need it
    signal = load_audio(flv)
    assert 1.0 < signal.size / SAMPLE_RATE < 6.0 and np.abs(signal).max() > 0.01


@needs_ffmpeg
def test_flv_mp3_track_equals_ffmpegs_decoding(crema_d_dir):
    flv = sorted((crema_d_dir / "VideoFlash").glob("*.flv"))[0]
    ours, rate = sf.read(io.BytesIO(audio.flv_mp3_stream(flv)), dtype="float32")
    ffmpeg = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(flv), "-vn", "-f", "f32le", "-"], capture_output=True, check=True
    ).stdout
    np.testing.assert_allclose(ours, np.frombuffer(ffmpeg, "<f4"), atol=1e-5)
    assert rate == 44100


def test_truncated_flv_keeps_the_audio_before_the_cut(crema_d_dir, tmp_path):
    flv = sorted((crema_d_dir / "VideoFlash").glob("*.flv"))[0]
    cut = tmp_path / flv.name
    cut.write_bytes(flv.read_bytes()[: flv.stat().st_size // 2])
    with pytest.warns(MediaWarning):
        assert 0.3 < load_audio(cut).size / load_audio(flv).size < 0.7


def test_truncated_flv_warns_with_the_duration_its_metadata_declares(crema_d_dir, tmp_path):
    flv = sorted((crema_d_dir / "VideoFlash").glob("*.flv"))[0]
    assert 2.0 < audio.flv_duration(flv) < 2.5  # onMetaData of 1001_DFA_ANG_XX: 2.24 s
    cut = truncate(shutil.copy(flv, tmp_path / flv.name), keep=0.3)
    pattern = r"looks truncated: 0\.\d+ s of (audio|video) decoded, its container declares 2\.\d+ s"
    for read in (load_audio, read_frames):
        with pytest.warns(MediaWarning, match=pattern) as caught:
            read(cut)
        assert len(caught) == 1 and str(caught[0].message).startswith(f"{cut}: ")


FFMPEG_WRITTEN = [pytest.param(".flac", marks=needs_ffmpeg), pytest.param(".m4a", marks=needs_ffmpeg)]


def no_media_warning(read, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaWarning)
        read(path)


@pytest.mark.parametrize("suffix", [".wav", *FFMPEG_WRITTEN])
def test_truncated_audio_warns_and_keeps_its_samples(tmp_path, suffix):
    whole = write_audio(tmp_path / "whole.wav", 2.0)
    path = tmp_path / f"cut{suffix}"
    if suffix == ".wav":
        shutil.copy(whole, path)
    else:
        command = ["ffmpeg", "-v", "error", "-i", str(whole), "-movflags", "+faststart", str(path)]  # index first
        subprocess.run(command, check=True)
    no_media_warning(load_audio, path)
    truncate(path, keep=0.5)
    with pytest.warns(MediaWarning, match=f"{path}: looks truncated: .* declares 2.0") as caught:
        signal = load_audio(path)
    assert len(caught) == 1 and 0.5 * SAMPLE_RATE < signal.size < 1.5 * SAMPLE_RATE


def test_truncated_mp3_warns(crema_d_dir, tmp_path):
    mp3 = sorted((crema_d_dir / "AudioMP3").glob("*.mp3"))[0]
    no_media_warning(load_audio, mp3)
    with pytest.warns(MediaWarning, match="looks truncated"):
        load_audio(truncate(shutil.copy(mp3, tmp_path / mp3.name), keep=0.3))


def test_whole_real_clips_do_not_warn(crema_d_dir, ravdess_dir, savee_dir):
    paths = [next((crema_d_dir / folder).iterdir()) for folder in ("AudioMP3", "VideoFlash")]
    paths += [sorted(ravdess_dir.glob("Actor_01/*"))[0], sorted(savee_dir.rglob("*.*[cv]"))[0]]
    for path in paths:
        no_media_warning(load_audio, path)
    no_media_warning(read_frames, paths[1])


@needs_ffmpeg
def test_flv_without_mp3_audio_goes_to_ffmpeg(tmp_path):
    wav = write_audio(tmp_path / "a.wav", 1.0)
    aac = tmp_path / "aac.flv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(aac)], check=True)
    assert audio.flv_mp3_stream(aac) is None
    np.testing.assert_allclose(load_audio(aac).size, SAMPLE_RATE, rtol=0.1)


def test_file_named_flv_that_is_not_one(tmp_path):
    fake = tmp_path / "fake.flv"
    fake.write_bytes(b"not a video at all" * 10)
    assert audio.flv_mp3_stream(fake) is None
    with pytest.raises(AudioError, match="fake.flv"):
        load_audio(fake)


def test_load_audio_mp3_and_flac(crema_d_dir, ravdess_dir):
    mp3 = load_audio(sorted((crema_d_dir / "AudioMP3").glob("*.mp3"))[0])
    flac = load_audio(sorted(ravdess_dir.glob("Actor_01/*.flac"))[0])
    for signal in (mp3, flac):
        assert signal.dtype == np.float32 and 1.0 < signal.size / SAMPLE_RATE < 6.0 and np.abs(signal).max() > 0.01


# --- video ---------------------------------------------------------------------------------------------------


def test_read_frames_samples_at_the_requested_rate(tmp_path):
    frames = [np.full((48, 64, 3), i * 8, np.uint8) for i in range(30)]  # 3 s at 10 fps, brightness = index
    path = write_video(tmp_path / "ramp.mp4", frames, fps=10)
    sampled, times = read_frames(path, fps=5)
    assert sampled.shape == (15, 48, 64, 3)
    np.testing.assert_allclose(times, np.arange(15) * 0.2, atol=1e-6)
    brightness = sampled.reshape(15, -1).mean(axis=1)
    np.testing.assert_allclose(brightness, np.arange(0, 30, 2) * 8, atol=4)  # every other source frame


def test_read_frames_greyscale_video_gives_bgr(tmp_path):
    grey = [cv2.cvtColor(face_frame(), cv2.COLOR_BGR2GRAY)] * 6
    frames, _ = read_frames(write_video(tmp_path / "grey.mp4", grey), fps=10)
    assert frames.shape == (6, 224, 224, 3) and frames.dtype == np.uint8


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated_mp4"])
def test_read_frames_unreadable_video_names_the_file(tmp_path, damage):
    path = write_video(tmp_path / f"{damage}.mp4", [face_frame()] * 20)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        truncate(path, keep=0.5)  # mp4v keeps its index (moov atom) at the end: nothing is recoverable
    with pytest.raises(VideoError) as info:
        read_frames(path)
    assert str(path) in str(info.value)


def test_read_frames_truncated_avi_keeps_the_frames_before_the_damage(tmp_path):
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (224, 224))
    for _ in range(20):
        writer.write(face_frame())
    writer.release()
    no_media_warning(read_frames, path)
    pattern = r"looks truncated: 0\.\d+ s of video decoded, its container declares 2\.00 s"
    with pytest.warns(MediaWarning, match=pattern):
        frames, times = read_frames(truncate(path, keep=0.5), fps=10)
    assert 5 <= len(frames) < 20
    np.testing.assert_allclose(np.diff(times), 0.1, atol=1e-6)


def test_iter_frames_rejects_bad_rate(tmp_path):
    with pytest.raises(ValueError, match="fps"):
        next(iter_frames(tmp_path / "x.mp4", fps=0))
