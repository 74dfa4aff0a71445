"""The feature cache: extraction report, bad clips, reruns, parallel paths, SIGKILL safety, command line, verified
entries, the versions in the cache key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest
from test_features_media import face_frame, truncate, write_audio, write_video

from emotion_lib.cli import main as cli_main
from emotion_lib.data.clips import subset_clips
from emotion_lib.data.corpora import load_corpus
from emotion_lib.features import store
from emotion_lib.features.cache import CacheEntryError, read_entry
from emotion_lib.features.faces import FACE_BACKENDS, BackendUnavailable, FaceBackendSpec
from emotion_lib.features.store import (
    ExtractionConfig,
    _config_key,
    clip_dir,
    extract_features,
    load_features,
    package_version,
)
from emotion_lib.paths import REPO_ROOT

AUDIO_ONLY = ExtractionConfig(video_backend=None)
DLIB_2FPS = ExtractionConfig(video_backend="dlib", fps=2.0)


@pytest.fixture(scope="module")
def corpus_dir(corpus_3_actors) -> Path:
    return corpus_3_actors


@pytest.fixture(scope="module")
def clips(corpus_dir):
    return load_corpus("synthetic", corpus_dir)[0]


EMBEDDING_ATOL = 1e-6
"""How far face embeddings may move when TensorFlow runs with another number of math threads (the pool's workers use
one, a serial run in this process uses every core): oneDNN then sums in another order, which moves the last float
bits (measured up to 9e-8 on these machines). Audio features and masks must still be identical."""


def assert_same_features(first: dict, second: dict, embedding_atol: float = 0.0) -> None:
    assert first.keys() == second.keys()
    for clip_id in first:
        audio, video, mask = first[clip_id]
        other_audio, other_video, other_mask = second[clip_id]
        np.testing.assert_array_equal(audio, other_audio, err_msg=clip_id)
        for a, b in ((video, other_video), (mask, other_mask)):
            assert (a is None) == (b is None)
        if video is not None:
            np.testing.assert_array_equal(mask, other_mask, err_msg=clip_id)
            np.testing.assert_allclose(video, other_video, rtol=0, atol=embedding_atol, err_msg=clip_id)


def test_extract_load_and_rerun_skips(tmp_path, clips):
    report = extract_features(clips, AUDIO_ONLY, tmp_path, workers=1, progress=False)
    assert len(report.done) == len(clips) == 18 and not report.failed and not report.skipped
    features = load_features(clips, AUDIO_ONLY, tmp_path)
    assert list(features) == clips["clip_id"].tolist()
    for item in features.values():
        assert item.audio.dtype == np.float32 and item.audio.shape[1] == 25 and item.audio.shape[0] > 100
        assert item.video is None and item.video_mask is None
    again = extract_features(clips, AUDIO_ONLY, tmp_path, workers=1, progress=False)
    assert not again.done and len(again.skipped) == 18
    assert_same_features(features, load_features(clips, AUDIO_ONLY, tmp_path))
    manifest = (clip_dir(tmp_path, "synthetic", AUDIO_ONLY) / "manifest.json").read_text()
    assert '"opensmile": "2.6.0"' in manifest and '"skipped": 18' in manifest


def test_configuration_changes_the_cache_key(tmp_path, clips):
    assert ExtractionConfig(fps=5.0).key() == ExtractionConfig(fps=5.0).key()
    assert (
        len(
            {
                ExtractionConfig(fps=5.0).key(),
                ExtractionConfig(fps=10.0).key(),
                AUDIO_ONLY.key(),
                ExtractionConfig(audio_feature_set="ComParE_2016").key(),
            }
        )
        == 4
    )
    extract_features(clips.head(2), AUDIO_ONLY, tmp_path, workers=1, progress=False)
    with pytest.raises(FileNotFoundError, match="run extract_features first") as info:
        load_features(clips.head(3), AUDIO_ONLY, tmp_path)
    assert clips["clip_id"].iloc[2] in str(info.value)
    assert len(load_features(clips.head(3), AUDIO_ONLY, tmp_path, missing="skip")) == 2
    assert not load_features(
        clips.head(2), ExtractionConfig(video_backend=None, audio_level="functionals"), tmp_path, missing="skip"
    )


def test_unavailable_backend_fails_before_any_work(tmp_path, clips):
    config = ExtractionConfig(video_backend="facenet", backend_options={"weights": tmp_path / "missing.pt"})
    with pytest.raises(BackendUnavailable, match="missing.pt"):
        extract_features(clips.head(2), config, tmp_path / "cache", workers=1, progress=False)
    assert not (tmp_path / "cache").exists()


def test_a_registered_backend_runs_through_extract_features(tmp_path, clips, monkeypatch):
    from test_features_video import MeanColour

    monkeypatch.setitem(FACE_BACKENDS, "mean-colour", FaceBackendSpec(MeanColour, ("numpy",), ("gain",)))
    config = ExtractionConfig(video_backend="mean-colour", fps=2.0, backend_options={"gain": 0.5})
    report = extract_features(clips.head(1), config, tmp_path, workers=1, progress=False)
    assert len(report.done) == 1 and not report.failed
    (features,) = load_features(clips.head(1), config, tmp_path).values()
    assert features.video.shape[1] == 3 and features.video_mask.any()
    assert (features.video[features.video_mask] <= 0.5 * 255).all()


def test_bad_inputs_are_reported_per_clip_and_never_abort(tmp_path):
    """Every bad-input case of the issue in one run: failures name their file, the rest is extracted."""
    media = tmp_path / "media"
    media.mkdir()
    good_wav = write_audio(media / "good.wav", 1.0)
    (media / "empty.wav").write_bytes(b"")
    (media / "corrupt.wav").write_bytes(b"RIFF" + np.random.default_rng(1).bytes(3000))
    audio = {
        "empty": media / "empty.wav",
        "corrupt_audio": media / "corrupt.wav",
        "missing": media / "missing.wav",
        "truncated_audio": truncate(write_audio(media / "truncated.flac", 2.0), 0.5),
        "tiny_audio": write_audio(media / "tiny.wav", 0.05),
        "short": write_audio(media / "short.wav", 0.2),
        "long": write_audio(media / "long.wav", 60.0),
        "silence": media / "silence.wav",
        "stereo_48k": write_audio(media / "stereo.wav", 1.0, 48000, 2),
        "narrow_8k": write_audio(media / "8k.wav", 1.0, 8000),
    }
    write_audio(audio["silence"], 1.0)
    audio["silence"].write_bytes(audio["silence"].read_bytes()[:44] + bytes(32000))  # header + 1 s of zeros
    face, nobody = face_frame(0), np.full((224, 224, 3), 90, np.uint8)
    two = np.full((224, 448, 3), 70, np.uint8)
    two[:, :224], two[45:179, 269:403] = face_frame(0), face_frame(1, 134)
    grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    video = {
        "faceless": write_video(media / "faceless.mp4", [nobody] * 10),
        "two_faces": write_video(media / "two.mp4", [two] * 10),
        "greyscale": write_video(media / "grey.mp4", [grey] * 10),
        "corrupt_video": media / "corrupt.mp4",
        "truncated_video": truncate(write_video(media / "cut.mp4", [face] * 8)),
    }
    video["corrupt_video"].write_bytes(np.random.default_rng(2).bytes(5000))
    rows = [
        dict(clip_id=name, corpus="bad", actor="x", audio_path=str(path), video_path=None)
        for name, path in audio.items()
    ]
    rows += [
        dict(clip_id=name, corpus="bad", actor="x", audio_path=str(good_wav), video_path=str(path))
        for name, path in video.items()
    ]
    report = extract_features(rows, DLIB_2FPS, tmp_path / "cache", workers=1, progress=False)
    failed = dict(report.failed)
    assert set(failed) == {"empty", "corrupt_audio", "missing", "tiny_audio", "corrupt_video", "truncated_video"}
    for clip_id, reason in failed.items():
        path = audio.get(clip_id) or video[clip_id]
        assert str(path) in reason, reason
    assert set(report.done) == {
        "truncated_audio",
        "short",
        "long",
        "silence",
        "stereo_48k",
        "narrow_8k",
        "faceless",
        "two_faces",
        "greyscale",
    }
    assert report.no_face == ["faceless"]
    assert "FAILED empty" in str(report) and "without any detected face" in str(report)
    features = load_features(rows, DLIB_2FPS, tmp_path / "cache", missing="skip")
    assert set(features) == set(report.done)
    assert 5900 <= len(features["long"].audio) <= 6000 and 10 <= len(features["short"].audio) <= 20
    assert not features["faceless"].video_mask.any() and features["faceless"].video.shape == (2, 128)
    assert features["two_faces"].video_mask.all() and features["greyscale"].video_mask.all()
    assert features["stereo_48k"].audio.shape == features["narrow_8k"].audio.shape


def run_pool_and_kill_one_worker(clips, config, cache) -> tuple:
    """Run a 2-worker pool extraction in a thread and SIGKILL one worker once the first clip is stored (as an
    out-of-memory kill would); returns (report, killed pid or None)."""
    result, killed = {}, None
    thread = threading.Thread(
        target=lambda: result.update(report=extract_features(clips, config, cache, workers=2, progress=False))
    )
    thread.start()
    folder, deadline = clip_dir(cache, "synthetic", config), time.monotonic() + 180
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        workers = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
        if workers and list(folder.glob("*.npz")):
            killed = workers[0].pid
            workers[0].kill()
        time.sleep(0.02)
    thread.join()
    return result["report"], killed


@pytest.mark.slow
def test_pool_survives_a_killed_worker_and_pool_and_dask_match_serial(tmp_path, clips):
    """The process pool loses no clip when a worker dies mid-run (the unfinished clips go to a fresh pool), and
    the pool and Dask paths store exactly the serial features."""
    few = clips.head(4)
    pool, killed = run_pool_and_kill_one_worker(few, DLIB_2FPS, tmp_path / "pool")
    assert killed is not None, "no worker was running to kill"
    assert sorted(pool.done) == sorted(few["clip_id"]) and not pool.failed
    dask = extract_features(few.head(2), DLIB_2FPS, tmp_path / "dask", workers=2, scheduler="dask", progress=False)
    assert len(dask.done) == 2 and not dask.failed
    extract_features(few, DLIB_2FPS, tmp_path / "serial", workers=1, progress=False)
    serial = load_features(few, DLIB_2FPS, tmp_path / "serial")
    assert all(item.video_mask.any() for item in serial.values())
    assert_same_features(serial, load_features(few, DLIB_2FPS, tmp_path / "pool"), EMBEDDING_ATOL)
    assert_same_features(
        {k: serial[k] for k in few["clip_id"][:2]},
        load_features(few.head(2), DLIB_2FPS, tmp_path / "dask"),
        EMBEDDING_ATOL,
    )


@pytest.mark.slow
def test_sigkill_midway_then_rerun_gives_identical_features(tmp_path, corpus_dir, clips):
    few = subset_clips(clips, 6, seed=0)
    extract_features(few, DLIB_2FPS, tmp_path / "reference", workers=1, progress=False)
    cache = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "emotion_lib",
        "extract",
        "--corpus",
        "synthetic",
        "--data-dir",
        str(corpus_dir),
        "--cache-dir",
        str(cache),
        "--subset",
        "6",
        "--seed",
        "0",
        "--fps",
        "2",
        "--workers",
        "1",
        "--no-progress",
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    folder = clip_dir(cache, "synthetic", DLIB_2FPS)
    deadline = time.monotonic() + 120
    while not list(folder.glob("*.npz")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(list(folder.glob("*.npz")))
    assert 1 <= finished < 6, "the run was not killed midway"
    report = extract_features(few, DLIB_2FPS, cache, workers=1, progress=False)
    assert len(report.skipped) == finished and len(report.done) == 6 - finished and not report.failed
    assert_same_features(load_features(few, DLIB_2FPS, tmp_path / "reference"), load_features(few, DLIB_2FPS, cache))


def test_command_line_extract(tmp_path, corpus_dir, capsys):
    status = cli_main(
        [
            "extract",
            "--corpus",
            "synthetic",
            "--data-dir",
            str(corpus_dir),
            "--cache-dir",
            str(tmp_path),
            "--backend",
            "none",
            "--subset",
            "3",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert status == 0
    assert "3 done, 0 skipped" in capsys.readouterr().out
    assert len(list(clip_dir(tmp_path, "synthetic", AUDIO_ONLY).glob("*.npz"))) == 3


def damage_entries(folder: Path, names: list[str]) -> dict[str, str]:
    """Damage five cached entries in the ways a disk, a copy or another program can; returns path -> the words
    the report must give."""
    paths = [folder / f"{name}.npz" for name in names]
    paths[0].write_bytes(b"")
    truncate(paths[1], 0.6)
    arrays = read_entry(paths[2])
    with np.load(paths[2]) as data:
        np.savez(paths[2], **dict(data), extra=np.zeros(2))
    with np.load(paths[3]) as data:
        changed = dict(data)
    changed["audio"] = changed["audio"] + np.float32(1)  # plausible values, stale checksum
    np.savez(paths[3], **changed)
    np.savez(paths[4], **arrays)  # as an older version wrote it: no checksum
    words = ("empty file", "unreadable", "extra: ['extra']", "checksum mismatch", "no checksum")
    return {str(path): word for path, word in zip(paths, words)}


def test_corrupt_entries_are_named_skipped_and_extracted_again(tmp_path, clips):
    few = clips.head(6)
    extract_features(few, AUDIO_ONLY, tmp_path, workers=1, progress=False)
    folder = clip_dir(tmp_path, "synthetic", AUDIO_ONLY)
    clean = load_features(few, AUDIO_ONLY, tmp_path)
    damaged = damage_entries(folder, few["clip_id"].tolist()[:5])
    with pytest.raises(CacheEntryError, match=re.escape(next(iter(damaged)))) as info:
        load_features(few, AUDIO_ONLY, tmp_path)
    assert all(path in str(info.value) for path in damaged)
    with pytest.warns(UserWarning, match="5 cached entries that did not verify") as warned:
        assert list(load_features(few, AUDIO_ONLY, tmp_path, missing="skip")) == [few["clip_id"].iloc[5]]
    for path, words in damaged.items():
        assert f"{path}: " in str(warned[0].message) and words in str(warned[0].message)
    stale, fresh = folder / ".x.npz.abc.tmp", folder / ".y.npz.def.tmp"
    stale.write_bytes(b"left by a killed run")
    fresh.write_bytes(b"being written by another run")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    report = extract_features(few, AUDIO_ONLY, tmp_path, workers=1, progress=False)
    assert dict(report.corrupt).keys() == damaged.keys() and len(report.done) == 5 and len(report.skipped) == 1
    for path, words in damaged.items():
        assert words in dict(report.corrupt)[path] and f"CORRUPT {path}: " in str(report)
    assert report.removed_temporaries == [str(stale)] and not stale.exists() and fresh.exists()
    assert len(json.loads((folder / "manifest.json").read_text())["last_run"]["corrupt"]) == 5
    assert_same_features(clean, load_features(few, AUDIO_ONLY, tmp_path))


def test_tensorflow_keys_the_cache_whichever_distribution_provides_it(monkeypatch):
    """tensorflow-cpu, tensorflow or tensorflow[and-cuda]: the version of the one installed keys dlib features."""
    providers = metadata.packages_distributions().get("tensorflow", [])
    if not providers:
        pytest.skip("TensorFlow is not installed")
    assert DLIB_2FPS.versions()["tensorflow"] == metadata.version(providers[0]) is not None
    assert package_version("dlib-bin") == metadata.version("dlib-bin") and package_version("no-such-package") is None
    key = DLIB_2FPS.key()
    monkeypatch.setattr(store, "package_version", lambda name: "0.0-other" if name == "tensorflow" else "1")
    _config_key.cache_clear()
    try:
        assert DLIB_2FPS.key() != key and AUDIO_ONLY.versions() == {"opensmile": "1"}
    finally:
        _config_key.cache_clear()
