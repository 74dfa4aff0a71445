"""Reliability of ``python -m emotion_lib extract`` against bad input, Ctrl-C and kills.

A bad-input corpus (CREMA-D layout) is built from generated synthetic clips, real clips from ../shared/data (their
test is skipped when absent) and broken entries: empty, corrupt, cut short, silent, a broken link, a folder and a
pipe named like clips. The command is interrupted (SIGINT to its process group, as Ctrl-C does), killed (SIGKILL)
at several moments, its cache damaged, and rerun; the final cache must equal an uninterrupted run's entry by entry,
every good clip extracted and every bad one named with its path. The moments are not guessed with sleeps: the
run reports where it is through an events file and waits at a chosen event (``emotion_lib/features/events.py``).

Which test covers which finding of the reliability review (1-13): ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf
from opensmile.core.lib import OpenSMILE
from test_features_media import face_frame, needs_ffmpeg, truncate, write_video

from emotion_lib.data.corpora import load_corpus
from emotion_lib.features.cache import CacheEntryError, read_entry
from emotion_lib.features.events import EVENTS_VARIABLE, PAUSE_VARIABLE, RESUME
from emotion_lib.features.smile import CONFIG_ROOT, SmileEngine, lean_config
from emotion_lib.features.store import (
    ExtractionConfig,
    ExtractionInterrupted,
    clip_dir,
    extract_features,
    load_features,
)
from emotion_lib.paths import REPO_ROOT, shared_data_dir

AUDIO_ONLY = ExtractionConfig(video_backend=None)
START_SECONDS = 240
"""Longest wait for the command to store its first clip (two cores shared with other work: its start-up, with
its workers importing the library, can take half a minute)."""
BAD_AT_LOAD = {  # file name -> what the corpus load report says of it
    "1090_DFA_ANG_XX.wav": "empty file (0 bytes)",
    "1090_DFA_DIS_XX.wav": "broken link",
    "1090_DFA_FEA_XX.wav": "a folder named like a clip",
    "1090_DFA_HAP_XX.wav": "a named pipe",
}
BAD_AT_EXTRACTION = ("1090_DFA_NEU_XX", "1090_DFA_SAD_XX", "1090_IEO_ANG_XX")
"""Corrupt WAV, WAV cut inside its first frame, corrupt MP4: each fails extraction with its path."""


@pytest.fixture(scope="module")
def synthetic_dir(corpus_3_actors) -> Path:
    return corpus_3_actors


def add_bad_entries(root: Path) -> None:
    """The broken entries of the corpus at ``root`` (CREMA-D layout), plus a silent clip (a good one)."""
    wav, mp4 = root / "AudioWAV", root / "VideoMP4"
    wav.mkdir(exist_ok=True)
    mp4.mkdir(exist_ok=True)
    (wav / "1090_DFA_ANG_XX.wav").write_bytes(b"")
    (wav / "1090_DFA_DIS_XX.wav").symlink_to(root / "nowhere.wav")
    (wav / "1090_DFA_FEA_XX.wav").mkdir()
    os.mkfifo(wav / "1090_DFA_HAP_XX.wav")
    (wav / "1090_DFA_NEU_XX.wav").write_bytes(b"RIFF" + np.random.default_rng(3).bytes(4000))
    sf.write(wav / "1090_DFA_SAD_XX.wav", np.ones(16000, np.float32) / 4, 16000, subtype="PCM_16")
    (wav / "1090_DFA_SAD_XX.wav").write_bytes((wav / "1090_DFA_SAD_XX.wav").read_bytes()[:60])  # header + 8 samples
    (mp4 / "1090_IEO_ANG_XX.mp4").write_bytes(np.random.default_rng(4).bytes(6000))
    sf.write(wav / "1090_IEO_NEU_XX.wav", np.zeros(32000, np.float32), 16000, subtype="PCM_16")


@pytest.fixture(scope="module")
def bad_corpus(synthetic_dir, tmp_path_factory) -> Path:
    """The generated clips (linked) and the broken entries, in the CREMA-D layout."""
    root = tmp_path_factory.mktemp("bad-corpus")
    (root / "AudioWAV").mkdir()
    for path in sorted((synthetic_dir / "AudioWAV").glob("*.wav")):
        (root / "AudioWAV" / path.name).symlink_to(path)
    add_bad_entries(root)
    return root


def command(corpus: Path, cache: Path, workers: int, name: str = "crema-d") -> list[str]:
    """The extraction command line (audio only: the interrupts under test are about the run, not the backend)."""
    return [
        sys.executable,
        "-m",
        "emotion_lib",
        "extract",
        "--corpus",
        name,
        "--data-dir",
        str(corpus),
        "--cache-dir",
        str(cache),
        "--backend",
        "none",
        "--workers",
        str(workers),
        "--no-progress",
    ]


class Events:
    """The events file of a run (:mod:`emotion_lib.features.events`): where the run is, read by polling."""

    def __init__(self, path: Path, pause: str = "") -> None:
        self.path, self.pause = path, pause

    def environment(self) -> dict[str, str]:
        """The variables that make a run write this file (and pause where :attr:`pause` says)."""
        return {EVENTS_VARIABLE: str(self.path), PAUSE_VARIABLE: self.pause}

    def count(self, event: str) -> int:
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        return sum(line.split(" ", 1)[0] == event for line in lines)

    def resume(self) -> None:
        with open(self.path, "a") as events:
            events.write(f"{RESUME}\n")


class Run:
    """The command running in its own process group (as a shell runs a foreground job); with ``events``, it writes
    that events file and pauses where it says."""

    def __init__(self, args: list[str], events: Events | None = None) -> None:
        environment = {**os.environ, **(events.environment() if events else {})}
        self.process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=environment,
        )

    def wait_until(self, condition: Callable[[], bool], timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                out, err = self.process.communicate()
                pytest.fail(f"the command ended or timed out before the moment under test:\n{out}\n{err}")
            time.sleep(0.01)

    def signal_group(self, number: int) -> None:
        os.killpg(self.process.pid, number)

    def finish(self, timeout: float = START_SECONDS) -> tuple[int, str, str]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        finally:
            self.kill()
        return self.process.returncode, out, err

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def stored(folder: Path) -> set[str]:
    return {path.stem for path in folder.glob("*.npz")}


def assert_same_entries(folder: Path, reference: Path) -> None:
    """Every entry of ``folder`` verifies and holds the reference run's arrays, bit for bit."""
    assert stored(folder) == stored(reference)
    for name in stored(reference):
        ours, theirs = read_entry(folder / f"{name}.npz"), read_entry(reference / f"{name}.npz")
        assert ours.keys() == theirs.keys(), name
        for key in theirs:
            assert ours[key].dtype == theirs[key].dtype and ours[key].shape == theirs[key].shape, (name, key)
            assert ours[key].tobytes() == theirs[key].tobytes(), (name, key)


def last_run(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())["last_run"]


def one_line_interrupt(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    assert "Traceback" not in err and "Exception ignored" not in err


def damage(folder: Path) -> dict[str, str]:
    """Damage four cached entries (truncated, emptied, an array added, written without a checksum) and leave an
    old and a fresh temporary file (``.old1.tmp``, ``.new1.tmp``); returns entry path -> what the report says."""
    names = sorted(stored(folder))[:4]
    paths = [folder / f"{name}.npz" for name in names]
    truncate(paths[0], 0.5)
    paths[1].write_bytes(b"")
    with np.load(paths[2]) as data:
        arrays = dict(data)
    np.savez(paths[2], **arrays, extra=np.zeros(3))
    np.savez(paths[3], audio=read_entry(paths[3])["audio"])
    old, fresh = folder / f".{names[0]}.npz.old1.tmp", folder / f".{names[1]}.npz.new1.tmp"
    old.write_bytes(b"half an entry")
    fresh.write_bytes(b"an entry being written")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    return {str(paths[0]): "unreadable", str(paths[1]): "empty", str(paths[2]): "extra", str(paths[3]): "no checksum"}


def test_ctrl_c_in_process_stops_the_run_and_records_it(synthetic_dir, tmp_path, monkeypatch):
    """In this process (serial run): Ctrl-C right after the third clip is stored raises ExtractionInterrupted, no
    clip starts afterwards, the clips stored are whole and the manifest records the run as interrupted."""
    clips = load_corpus("synthetic", synthetic_dir)[0]
    folder = clip_dir(tmp_path, "synthetic", AUDIO_ONLY)
    events = Events(tmp_path / "events", pause="clip-stored:3")  # the run waits after storing its third clip
    for variable, value in events.environment().items():
        monkeypatch.setenv(variable, value)

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + START_SECONDS
        while events.count("clip-stored") < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=press_ctrl_c)
    timer.start()
    try:
        with pytest.raises(ExtractionInterrupted) as info:
            extract_features(clips, AUDIO_ONLY, tmp_path, workers=1, progress=False)
    finally:
        timer.join()
    report = info.value.report
    assert report.interrupted and not report.finished and len(report.done) == 2 and events.count("clip-start") == 3
    assert set(report.done) < stored(folder) and len(stored(folder)) == 3  # the third was stored when Ctrl-C came
    assert last_run(folder)["interrupted"] and last_run(folder)["done"] == 2
    assert len(load_features(clips, AUDIO_ONLY, tmp_path, missing="skip")) == 3


@pytest.mark.slow
def test_interrupts_kills_and_damage_leave_the_cache_of_a_clean_run(bad_corpus, tmp_path):
    """Ctrl-C and SIGKILL of a 2-worker run at two moments, four damaged entries and stale temporary files; the
    rerun repairs everything: the cache equals an uninterrupted run's, bad inputs and entries are named."""
    clips, load_report = load_corpus("crema-d", bad_corpus)
    assert {Path(path).name for path, _ in load_report.skipped} == set(BAD_AT_LOAD)
    reference = extract_features(clips, AUDIO_ONLY, tmp_path / "reference", workers=1, progress=False)
    assert {clip_id for clip_id, _ in reference.failed} == set(BAD_AT_EXTRACTION)
    good = set(reference.done)
    reference_dir, cache = clip_dir(tmp_path / "reference", "crema-d", AUDIO_ONLY), tmp_path / "cache"
    folder = clip_dir(cache, "crema-d", AUDIO_ONLY)

    events = Events(tmp_path / "ctrl-c.events", pause="clip-stored:1")  # each worker waits after its first clip
    run = Run(command(bad_corpus, cache, workers=2), events)
    run.wait_until(lambda: events.count("clip-stored") >= 1)
    run.signal_group(signal.SIGINT)  # Ctrl-C once the first clip is stored
    status, _, err = run.finish()
    assert status == 130
    one_line_interrupt(err)
    assert 1 <= len(stored(folder)) <= 2 and events.count("clip-start") <= 2, "clips kept being extracted after Ctrl-C"
    assert last_run(folder)["interrupted"] and not last_run(folder)["finished"]

    before = len(stored(folder))
    events = Events(tmp_path / "kill.events", pause="clip-stored:3")  # each worker waits after its third clip
    run = Run(command(bad_corpus, cache, workers=2), events)
    run.wait_until(lambda: events.count("clip-stored") >= 6)
    run.signal_group(signal.SIGKILL)  # SIGKILL of the whole group mid-run
    run.finish()
    assert len(stored(folder)) == before + 6 < len(good), "the run was not killed midway"
    for name in stored(folder):
        read_entry(folder / f"{name}.npz")  # every stored entry is whole and verifies

    damaged = damage(folder)
    with pytest.warns(UserWarning, match="did not verify") as warned:
        assert len(load_features(clips, AUDIO_ONLY, cache, missing="skip")) == len(stored(folder)) - 4
    assert all(path in str(warned[0].message) for path in damaged)
    with pytest.raises(CacheEntryError, match=r"\.npz"):
        load_features(clips, AUDIO_ONLY, cache)

    status, out, err = Run(command(bad_corpus, cache, workers=2)).finish()
    assert status == 0, err
    assert_same_entries(folder, reference_dir)
    for path, kind in damaged.items():
        assert f"CORRUPT {path}:" in out and kind in out.split(f"CORRUPT {path}:")[1].splitlines()[0]
    for name, reason in BAD_AT_LOAD.items():
        assert f"{bad_corpus / 'AudioWAV' / name}: {reason}" in out
    for clip_id in BAD_AT_EXTRACTION:
        line = next(line for line in out.splitlines() if f"FAILED {clip_id}:" in line)
        assert str(bad_corpus) in line
    assert "removed 1 stale temporary file" in out
    assert [path.suffixes[-2:] for path in folder.glob(".*.tmp")] == [[".new1", ".tmp"]]
    assert last_run(folder)["finished"] and len(last_run(folder)["corrupt"]) == 4


def test_ctrl_c_between_two_opensmile_runs_leaves_the_engine_usable(monkeypatch):
    """Ctrl-C landing while the engine is reset for the next signal (it used to leave openSMILE reset but marked
    as used, and every later clip in the process failed with "openSMILE must be in the ended state for
    resetting"): the run is interrupted after it, and the next signal gives the same features as before."""
    engine = SmileEngine(lean_config(CONFIG_ROOT / "egemaps/v02/eGeMAPSv02.conf", ["lld"]), ["lld"])
    tone = (0.3 * np.sin(np.linspace(0, 2000, 16000))).astype(np.float32)
    expected = engine(tone)
    reset = OpenSMILE.reset

    def reset_then_ctrl_c(self) -> None:
        reset(self)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(OpenSMILE, "reset", reset_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        engine(tone)
    monkeypatch.undo()
    np.testing.assert_array_equal(engine(tone), expected)
    np.testing.assert_array_equal(engine(tone), expected)


def descendants_gone(pids: list[int], timeout: float) -> list[int]:
    """The processes of ``pids`` still running (not exited, not a zombie) after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.mark.slow
def test_workers_exit_when_only_the_parent_is_killed(synthetic_dir, tmp_path):
    """SIGKILL of the parent alone (its workers are not signalled): every worker exits by itself within seconds."""
    cache = tmp_path / "cache"
    folder = clip_dir(cache, "synthetic", AUDIO_ONLY)
    run = Run(command(synthetic_dir, cache, workers=2, name="synthetic"))
    parent = psutil.Process(run.process.pid)
    run.wait_until(lambda: len(stored(folder)) >= 1)
    workers = [child.pid for child in parent.children(recursive=True)]
    assert workers, "no worker process to orphan"
    parent.kill()
    run.process.wait()
    try:
        assert descendants_gone(workers, timeout=15) == []
    finally:
        for pid in descendants_gone(workers, timeout=0):
            os.kill(pid, signal.SIGKILL)


def long_real_clip(shared: Path, path: Path, seconds: float) -> Path:
    """Real speech (RAVDESS clips one after the other) of at least ``seconds``, as a 16 kHz WAV."""
    from emotion_lib.features.audio import load_audio

    parts, total = [], 0
    for clip in sorted((shared / "ravdess").glob("Actor_0*/*.flac")):
        parts.append(load_audio(clip))
        total += len(parts[-1])
        if total >= seconds * 16000:
            break
    sf.write(path, np.concatenate(parts), 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory) -> Path:
    """Real CREMA-D clips (MP3 and FLV, linked), one cut to 30 % and a long real clip sorted first."""
    shared = shared_data_dir()
    if not (shared / "crema-d" / "AudioMP3").is_dir() or not (shared / "ravdess").is_dir():
        pytest.skip(f"real clips not available: {shared}/crema-d or {shared}/ravdess is absent")
    root = tmp_path_factory.mktemp("real-corpus")
    for folder, actor in (("AudioMP3", "1091"), ("VideoFlash", "1092")):
        (root / folder).mkdir()
        for path in sorted((shared / "crema-d" / folder).glob("*"))[:4]:
            (root / folder / f"{actor}{path.name[4:]}").symlink_to(path)
    flv = next(iter(sorted((shared / "crema-d" / "VideoFlash").glob("*.flv"))))
    (root / "VideoFlash" / f"1093{flv.name[4:]}").write_bytes(flv.read_bytes())
    truncate(root / "VideoFlash" / f"1093{flv.name[4:]}", 0.3)
    (root / "AudioWAV").mkdir()
    long_real_clip(shared, root / "AudioWAV" / "1000_IEO_NEU_XX.wav", 90)
    return root


@pytest.mark.slow
@pytest.mark.shared_data
def test_ctrl_c_inside_opensmile_on_a_long_real_clip(real_corpus, tmp_path):
    """A serial run is interrupted while openSMILE works on a 90 s real clip (the first clip): the interrupt is not
    lost in openSMILE's frame callback (no clip one frame short), the run stops with 130, and the rerun stores
    what an uninterrupted run does."""
    clips = load_corpus("crema-d", real_corpus)[0]
    reference = extract_features(clips, AUDIO_ONLY, tmp_path / "reference", workers=1, progress=False)
    assert sorted(reference.done) == sorted(clips["clip_id"]) and not reference.failed
    cache = tmp_path / "cache"
    folder = clip_dir(cache, "crema-d", AUDIO_ONLY)
    events = Events(tmp_path / "events", pause="smile-frame:1")  # openSMILE waits in its frame callback
    run = Run(command(real_corpus, cache, workers=1), events)
    run.wait_until(lambda: events.count("smile-frame") >= 1)
    run.signal_group(signal.SIGINT)  # Ctrl-C inside openSMILE's frame callback, on the first clip
    events.resume()
    status, _, err = run.finish()
    assert status == 130
    one_line_interrupt(err)
    assert not stored(folder), "the interrupted clip (or a later one) was stored"
    status, out, err = Run(command(real_corpus, cache, workers=2)).finish()
    assert status == 0 and f"{len(clips)} done" in out, err
    assert_same_entries(folder, clip_dir(tmp_path / "reference", "crema-d", AUDIO_ONLY))


def clip_row(clip_id: str, path: Path, video: bool = True) -> dict:
    """A one-file clip (its video file holds the voice too, like CREMA-D's FLV clips)."""
    return dict(
        clip_id=clip_id,
        corpus="test",
        actor="1001",
        sentence="s",
        emotion="neutral",
        intensity=None,
        audio_path=str(path),
        video_path=str(path) if video else None,
    )


@needs_ffmpeg
def test_a_video_without_audio_keeps_its_video_features(tmp_path):
    """A video without an audio track: its video features are kept and the missing audio is a warning naming the
    file (no ffmpeg "Output file #0 does not contain any stream"); audio-only, it fails naming the file once."""
    video = write_video(tmp_path / "silent.mp4", [face_frame()] * 10)  # 1 s at 10 frames/s, no audio track
    clips, config, cache = [clip_row("silent", video)], ExtractionConfig(), tmp_path / "cache"
    report = extract_features(clips, config, cache_dir=cache, workers=1, progress=False)
    assert report.done == ["silent"] and not report.failed
    [(clip_id, message)] = report.warnings
    assert clip_id == "silent" and message.startswith(f"{video}: no audio track") and "video features kept" in message
    assert f"WARNING silent: {message}" in str(report)
    features = load_features(clips, config, cache)["silent"]
    assert features.audio.shape == (0, 25) and features.video.shape == (5, 128) and features.video_mask.all()

    audio_only = extract_features(clips, AUDIO_ONLY, cache, workers=1, progress=False)
    [(_, reason)] = audio_only.failed
    assert "no audio track" in reason and "Output file" not in reason and reason.count(str(video)) == 1


@pytest.mark.shared_data
def test_media_warnings_reach_the_report_and_the_manifest(crema_d_dir, tmp_path):
    """A real FLV cut to 30 %: extracted with a truncation warning, in the report and the manifest."""
    flv = sorted((crema_d_dir / "VideoFlash").glob("*.flv"))[0]
    cut = truncate(Path(shutil.copy(flv, tmp_path / flv.name)), keep=0.3)
    report = extract_features([clip_row("cut", cut, video=False)], AUDIO_ONLY, tmp_path, workers=1, progress=False)
    assert report.done == ["cut"]
    [(clip_id, message)] = report.warnings
    assert clip_id == "cut" and message.startswith(f"{cut}: looks truncated: 0.5")
    assert last_run(clip_dir(tmp_path, "test", AUDIO_ONLY))["warnings"] == [["cut", message]]
