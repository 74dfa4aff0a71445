"""Corpus loaders: real clips from ../shared/data and every kind of bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from emotion_lib.data.corpora import (
    CLIP_COLUMNS,
    CORPORA,
    CorpusError,
    CorpusSpec,
    load_ckplus48,
    load_corpus,
    load_crema_d,
    load_ravdess,
    load_savee,
    speaker_groups,
)
from emotion_lib.labels import EMOTIONS


def touch(path: Path, content: bytes = b"not empty") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_ravdess_real_counts_and_labels(ravdess_dir):
    clips, report = load_ravdess(ravdess_dir)
    assert list(clips.columns) == CLIP_COLUMNS
    assert len(clips) == 792
    assert report.loaded + sum(report.dropped_classes.values()) == 1080
    assert report.dropped_classes == {"calm": 144, "surprised": 144}
    assert clips["emotion"].value_counts().to_dict() == {e: (72 if e == "neutral" else 144) for e in EMOTIONS}
    assert sorted(clips["actor"].unique()) == [f"{a:02d}" for a in range(1, 19)]
    angry = clips.set_index("clip_id").loc["01-05-02-01-01-07"]
    assert angry["emotion"] == "anger" and angry["intensity"] == "strong" and angry["actor"] == "07"
    assert angry["audio_path"].endswith("03-01-05-02-01-01-07.flac") and angry["video_path"] is None


def test_ravdess_faces_have_video_and_audio(ravdess_faces_dir):
    clips, report = load_ravdess(ravdess_faces_dir)
    assert len(clips) == 44 and clips["video_path"].notna().all()
    assert (clips["audio_path"] == clips["video_path"]).all()  # the audio track of the 01- file
    assert report.dropped_classes == {"surprised": 8}


def test_savee_real_counts(savee_dir):
    clips, report = load_savee(savee_dir)
    assert len(clips) == 420 and report.dropped_classes == {"surprised": 60}
    assert sorted(clips["actor"].unique()) == ["DC", "JE", "JK", "KL"]
    assert clips["emotion"].value_counts()["neutral"] == 120
    assert clips.set_index("clip_id").loc["JK_sa03", "emotion"] == "sadness"


def test_crema_d_real_flv_and_mp3(crema_d_dir):
    clips, report = load_crema_d(crema_d_dir, perceived_labels=True)
    with_video = clips[clips["video_path"].notna()]
    assert len(with_video) == 6 and with_video["video_path"].str.endswith(".flv").all()
    assert set(with_video["actor"]) == {"1001"} and sorted(with_video["emotion"]) == sorted(EMOTIONS)
    audio_only = clips[clips["video_path"].isna()]
    assert len(audio_only) == 6 and audio_only["audio_path"].str.endswith(".mp3").all()
    assert set(audio_only["actor"]) == {"1002"}
    assert clips["perceived_voice"].isin(list(EMOTIONS) + [None]).all()
    assert clips.set_index("clip_id").loc["1001_DFA_ANG_XX", "intensity"] == "unspecified"


def test_ckplus_real_counts(ckplus_dir):
    sequences, report = load_ckplus48(ckplus_dir)
    assert len(sequences) == 226
    assert sequences["emotion"].value_counts().to_dict() == {
        "happiness": 69,
        "disgust": 59,
        "anger": 45,
        "sadness": 28,
        "fear": 25,
    }
    assert report.dropped_classes == {"contempt": 18, "surprised": 83}
    assert sequences["image_paths"].map(len).eq(3).all()


def test_crema_d_pairs_audio_with_video_and_reports_bad_files(tmp_path):
    touch(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    touch(tmp_path / "VideoFlash" / "1001_DFA_ANG_XX.flv")
    touch(tmp_path / "AudioWAV" / "1001_DFA_HAP_HI.wav")
    touch(tmp_path / "AudioWAV" / "1076_MTI_NEU_XX.wav")  # known broken
    touch(tmp_path / "AudioWAV" / "1001_DFA_XYZ_XX.wav")  # unknown emotion
    touch(tmp_path / "AudioWAV" / "hello.wav")  # does not parse
    touch(tmp_path / "AudioWAV" / "1002_DFA_SAD_XX.wav", b"")  # empty
    clips, report = load_crema_d(tmp_path)
    assert list(clips["clip_id"]) == ["1001_DFA_ANG_XX", "1001_DFA_HAP_HI"]
    first = clips.iloc[0]
    assert first["audio_path"].endswith(".wav") and first["video_path"].endswith(".flv")
    reasons = {Path(path).name: reason for path, reason in report.skipped}
    assert "known broken" in reasons["1076_MTI_NEU_XX.wav"]
    assert "unknown emotion code 'XYZ'" in reasons["1001_DFA_XYZ_XX.wav"]
    assert "does not parse" in reasons["hello.wav"]
    assert "empty file" in reasons["1002_DFA_SAD_XX.wav"]
    assert "1076_MTI_NEU_XX.wav" in str(report)


def test_ravdess_pairs_audio_only_and_audio_video_files(tmp_path):
    touch(tmp_path / "Actor_02" / "03-01-04-02-01-01-02.wav")
    touch(tmp_path / "Actor_02" / "01-01-04-02-01-01-02.mp4")
    touch(tmp_path / "Actor_02" / "03-01-02-01-01-01-02.wav")  # calm: dropped and counted
    touch(tmp_path / "Actor_02" / "03-02-04-01-01-01-02.wav")  # song: skipped
    clips, report = load_ravdess(tmp_path)
    assert len(clips) == 1
    clip = clips.iloc[0]
    assert clip["emotion"] == "sadness" and clip["audio_path"].endswith("03-01-04-02-01-01-02.wav")
    assert clip["video_path"].endswith("01-01-04-02-01-01-02.mp4")
    assert report.dropped_classes == {"calm": 1} and "song" in report.skipped[0][1]


def test_savee_original_layout(tmp_path):
    touch(tmp_path / "AudioData" / "DC" / "sa01.wav")
    touch(tmp_path / "AudioData" / "DC" / "su01.wav")
    clips, report = load_savee(tmp_path)
    assert clips[["clip_id", "actor", "emotion"]].values.tolist() == [["DC_sa01", "DC", "sadness"]]
    assert report.dropped_classes == {"surprised": 1}


@pytest.mark.parametrize("loader", [load_crema_d, load_ravdess, load_savee, load_ckplus48])
def test_missing_and_empty_folders_name_the_path(loader, tmp_path):
    with pytest.raises(CorpusError, match="not found: .*nowhere"):
        loader(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match=f"no .* found under {tmp_path}"):
        loader(tmp_path)


def test_unknown_corpus_name():
    with pytest.raises(
        CorpusError, match="unknown corpus 'iemocap'; expected one of crema-d, ravdess, savee, synthetic"
    ):
        load_corpus("iemocap", ".")


def test_a_registered_corpus_loads_by_name(tmp_path, monkeypatch):
    """A new corpus is one registry entry: here a SAVEE-layout corpus of two speakers under another name."""

    def load_toy(root):
        clips, report = load_savee(root)
        return clips.assign(corpus="toy"), report

    monkeypatch.setitem(CORPORA, "toy", CorpusSpec(load_toy, ("DC", "JE"), 2))
    touch(tmp_path / "DC_a01.wav")
    touch(tmp_path / "JE_h02.wav")
    clips, report = load_corpus("toy", tmp_path)
    assert clips[["corpus", "actor", "emotion"]].values.tolist() == [["toy", "DC", "anger"], ["toy", "JE", "happiness"]]


def test_speaker_groups_are_corpus_qualified():
    clips = pd.DataFrame({"corpus": ["ravdess", "savee"], "actor": ["01", "DC"]})
    assert list(speaker_groups(clips)) == ["ravdess:01", "savee:DC"]


@pytest.mark.parametrize("corpus", ["crema-d", "savee", "ravdess"])
def test_one_bad_entry_never_aborts_a_load(tmp_path, corpus):
    """Broken links, folders and pipes named like clips, empty files: each is skipped with a true reason."""
    folder, good, names = {
        "crema-d": (
            "AudioWAV",
            "1001_IEO_ANG_HI.wav",
            ["1001_IEO_DIS_HI", "1001_IEO_FEA_HI", "1001_IEO_HAP_HI", "1001_IEO_SAD_HI"],
        ),
        "savee": ("", "DC_a01.wav", ["DC_d01", "DC_f01", "DC_h01", "DC_sa01"]),
        "ravdess": ("Actor_01", "03-01-05-01-01-01-01.wav", [f"03-01-0{e}-01-01-01-01" for e in (3, 4, 6, 7)]),
    }[corpus]
    root = tmp_path / corpus
    touch(root / folder / good)
    link, directory, pipe, empty = (root / folder / f"{name}.wav" for name in names)
    link.symlink_to(tmp_path / "nowhere.wav")
    directory.mkdir()
    os.mkfifo(pipe)
    touch(empty, b"")
    clips, report = load_corpus(corpus, root)
    assert list(clips["audio_path"]) == [str(root / folder / good)]
    reasons = dict(report.skipped)
    assert reasons[str(link)] == "broken link (its target does not exist)"
    assert reasons[str(directory)] == "a folder named like a clip, not a file"
    assert reasons[str(pipe)] == "a named pipe (FIFO), not a file"
    assert reasons[str(empty)] == "empty file (0 bytes)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: permissions cannot make one unreadable")
def test_unreadable_clip_is_reported(tmp_path):
    root = tmp_path / "savee"
    touch(root / "DC_a01.wav")
    locked = touch(root / "DC_d01.wav")
    locked.chmod(0)
    _, report = load_savee(root)
    assert dict(report.skipped)[str(locked)] == "not readable (permission denied)"
