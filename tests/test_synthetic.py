"""The embedded default corpus: deterministic, in the CREMA-D layout, with faces the detector finds."""

from __future__ import annotations

import hashlib

import cv2
import dlib
import numpy as np
import pytest

from emotion_lib.cli import main as cli_main
from emotion_lib.data.corpora import load_corpus
from emotion_lib.data.synthetic import FACE_CUES, generate_corpus, make_actors, render_face_video, synthesize_voice
from emotion_lib.labels import EMOTIONS


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    assert cli_main(["generate", "--out", str(out), "--actors", "3", "--clips-per-emotion", "1", "--workers", "1"]) == 0
    return out


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("AudioWAV/*.wav"))}


def test_loader_reads_the_generated_layout(tiny_corpus):
    clips, report = load_corpus("synthetic", tiny_corpus)
    assert len(clips) == 3 * 6 and report.skipped == []
    assert (clips["corpus"] == "synthetic").all() and "synthetic" in report.corpus
    assert clips["video_path"].str.endswith(".mp4").all() and clips["audio_path"].str.endswith(".wav").all()
    assert sorted(clips["emotion"].unique()) == sorted(EMOTIONS)
    assert "SYNTHETIC" in (tiny_corpus / "README.txt").read_text()


def test_generation_is_deterministic(tiny_corpus, tmp_path):
    cli_main(["generate", "--out", str(tmp_path), "--actors", "3", "--clips-per-emotion", "1", "--workers", "1"])
    assert digest(tmp_path) == digest(tiny_corpus)


def test_faces_are_found_by_the_face_detector(tiny_corpus):
    detector = dlib.get_frontal_face_detector()
    found = total = 0
    for path in sorted(tiny_corpus.glob("VideoMP4/*.mp4")):
        capture = cv2.VideoCapture(str(path))
        ok, frame = capture.read()
        while ok:
            total += 1
            found += len(detector(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 0)) > 0
            ok, frame = capture.read()
    assert total > 100 and found / total > 0.85


def test_voice_carries_arousal_and_face_carries_valence():
    actor = make_actors(2, seed=3)[0]
    rng = np.random.default_rng(0)
    loud, _ = synthesize_voice(actor, "anger", "DFA", 1.0, rng)
    quiet, _ = synthesize_voice(actor, "sadness", "DFA", 1.0, rng)
    assert np.sqrt(np.mean(loud**2)) > 2 * np.sqrt(np.mean(quiet**2))
    assert FACE_CUES["happiness"]["smile"] > FACE_CUES["neutral"]["smile"] > FACE_CUES["sadness"]["smile"]
    frames = render_face_video(actor, "happiness", 1.0, np.zeros(12), rng)
    assert len(frames) == 12 and frames[0].shape == (224, 224, 3)


def test_too_few_actors_is_a_clear_error(tmp_path, capsys):
    assert cli_main(["generate", "--out", str(tmp_path), "--actors", "2"]) == 2
    assert "at least 3 actors" in capsys.readouterr().err


def test_generator_refuses_a_folder_it_did_not_write(tmp_path):
    """Synthetic clips carry real CREMA-D names: generating into a real corpus would overwrite recordings."""
    real = tmp_path / "crema-d"
    (real / "AudioWAV").mkdir(parents=True)
    recording = real / "AudioWAV" / "1001_ITS_NEU_XX.wav"
    recording.write_bytes(b"a real recording")
    with pytest.raises(FileExistsError, match="not written by the synthetic generator"):
        generate_corpus(real, n_actors=3, clips_per_emotion=1, workers=1, progress=False)
    assert recording.read_bytes() == b"a real recording"
    assert cli_main(["generate", "--out", str(real), "--actors", "3", "--clips-per-emotion", "1"]) == 2
    assert recording.read_bytes() == b"a real recording"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        generate_corpus(tmp_path / "file", n_actors=3, clips_per_emotion=1, workers=1, progress=False)


def test_generator_writes_again_into_its_own_folder(tmp_path):
    out = generate_corpus(tmp_path / "synthetic", n_actors=3, clips_per_emotion=1, workers=1, progress=False)
    first = sorted(p.name for p in (out / "AudioWAV").iterdir())
    again = generate_corpus(out, n_actors=3, clips_per_emotion=1, workers=1, progress=False)
    assert sorted(p.name for p in (again / "AudioWAV").iterdir()) == first
    forced = tmp_path / "other"
    forced.mkdir()
    (forced / "notes.txt").write_text("mine")
    generate_corpus(forced, n_actors=3, clips_per_emotion=1, workers=1, progress=False, force=True)
    assert (forced / "notes.txt").read_text() == "mine" and (forced / "README.txt").exists()
