"""``predict`` on files: every format, the modalities used, the timeline, bad files among good ones, missing and
mismatched models, the command line and its JSON / CSV output, the real sample shipped in data/samples/.

The models are tiny bundles trained here for a few steps on random features (eGeMAPS 25-d voice, dlib 128-d faces);
the files are the repository's real CREMA-D sample and files converted from it or generated here.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from tiny_models import TINY_MODEL, TINY_WINDOWS

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.cli import main
from emotion_lib.data.corpora import load_corpus
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.inference import FilePredictor, load_predictor, predict
from emotion_lib.labels import EMOTIONS
from emotion_lib.paths import PRETRAINED_DIR, REPO_ROOT, SAMPLES_DIR
from emotion_lib.realtime.window import ModelInputError

SAMPLE = SAMPLES_DIR / "crema-d"
ANGER = SAMPLE / "VideoFlash" / "1001_DFA_ANG_XX.flv"
AV = ExtractionConfig(video_backend="dlib", fps=5.0)
VOICE = ExtractionConfig(video_backend=None)
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not on PATH")


def _train_bundle(path, modalities, extraction, audio_dim=25, video_dim=128, seed=0):
    """A tiny model trained for a few steps on random features, saved as a bundle with fitted normalisers."""
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.models.fusion import build_model
    from emotion_lib.sequences.data import random_clips
    from emotion_lib.training.bundle import save_bundle

    config = ModelConfig(
        **{**TINY_MODEL, **TINY_WINDOWS, "audio_dim": audio_dim, "video_dim": video_dim, "modalities": modalities}
    )
    data = random_clips(12, seed=seed, audio_dim=audio_dim, video_dim=video_dim, audio_frames=(30, 60))
    model = build_model(config)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    inputs = data.make_batch(range(len(data)), modalities)
    model.fit(inputs, np.eye(len(EMOTIONS))[data.labels], epochs=2, batch_size=4, verbose=0)
    rng = np.random.default_rng(seed)
    normalisers = {
        "audio": Normaliser().fit([rng.normal(1.0, 2.0, (80, audio_dim))]),
        "video": Normaliser().fit([rng.normal(0.0, 0.1, (40, video_dim))]),
    }
    normalisers = {name: n for name, n in normalisers.items() if name in modalities}
    return save_bundle(path, model, config, normalisers, extraction, metadata={"corpus": "random (test)"})


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {
        "av": _train_bundle(root / "av", ("audio", "video"), AV),
        "voice": _train_bundle(root / "voice", ("audio",), VOICE),
        "face": _train_bundle(root / "face", ("video",), AV),
        "mismatch": _train_bundle(root / "mismatch", ("audio", "video"), AV, audio_dim=30),
    }


@pytest.fixture(scope="module")
def av(bundles):
    return FilePredictor(bundles["av"])


def _ffmpeg(*args):
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The sample converted to every format, and bad files."""
    import cv2

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not on PATH: the converted media cannot be written")
    root = tmp_path_factory.mktemp("media")
    files = {"flv": ANGER}
    for suffix in ("wav", "flac", "mp3"):
        files[suffix] = root / f"anger.{suffix}"
        pcm = ("-sample_fmt", "s16") if suffix != "mp3" else ()  # WAV and FLAC: the same 16-bit samples
        _ffmpeg("-i", ANGER, "-vn", "-ac", "1", "-ar", "16000", *pcm, files[suffix])
    files["mp4"] = root / "anger.mp4"
    _ffmpeg("-i", ANGER, "-c:v", "mpeg4", "-q:v", "3", "-c:a", "aac", files["mp4"])
    files["mp4_silent_track"] = root / "no_audio_track.mp4"
    _ffmpeg("-i", ANGER, "-c:v", "mpeg4", "-q:v", "3", "-an", files["mp4_silent_track"])
    capture = cv2.VideoCapture(str(ANGER))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 30)
    ok, frame = capture.read()
    capture.release()
    assert ok
    for suffix in ("png", "jpg"):
        files[suffix] = root / f"face.{suffix}"
        cv2.imwrite(str(files[suffix]), frame)
    files["blank_png"] = root / "blank.png"
    cv2.imwrite(str(files["blank_png"]), np.full((240, 320, 3), 128, np.uint8))
    files["no_face_mp4"] = root / "no_face.mp4"  # grey frames, no audio track
    writer = cv2.VideoWriter(str(files["no_face_mp4"]), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(20):
        writer.write(np.full((120, 160, 3), 60 + 5 * i, np.uint8))
    writer.release()
    files["silent_wav"] = root / "silent.wav"
    sf.write(files["silent_wav"], np.zeros(16000, np.float32), 16000)
    files["empty_wav"] = root / "empty.wav"
    files["empty_wav"].write_bytes(b"")
    files["text_mp4"] = root / "not_a_video.mp4"
    files["text_mp4"].write_text("this is not a video\n" * 20)
    files["notes_txt"] = root / "notes.txt"
    files["notes_txt"].write_text("hello")
    files["missing"] = root / "missing.wav"
    return files


def _check_answer(result, modalities):
    assert result.ok, result.error
    assert list(result.probabilities) == list(EMOTIONS)
    values = np.array(list(result.probabilities.values()))
    assert np.all(values >= 0) and values.sum() == pytest.approx(1.0, abs=1e-6)
    assert result.label == EMOTIONS[int(np.argmax(values))] and result.confidence == pytest.approx(values.max())
    assert result.modalities == modalities


# ---- every format, the right modalities ----------------------------------------------------------------------
def test_every_format_is_answered_with_the_modalities_it_has(av, media):
    expected = {
        "flv": ("audio", "video"),
        "mp4": ("audio", "video"),
        "mp4_silent_track": ("video",),
        "wav": ("audio",),
        "flac": ("audio",),
        "mp3": ("audio",),
        "png": ("video",),
        "jpg": ("video",),
    }
    results = predict([media[name] for name in expected], model=av)
    for (name, modalities), result in zip(expected.items(), results):
        assert result.path == str(media[name])
        _check_answer(result, modalities)
    by_name = dict(zip(expected, results))
    assert any("no audio track" in note for note in by_name["mp4_silent_track"].notes)
    # WAV and FLAC hold the same samples: the same features, the same answer
    assert by_name["wav"].probabilities == pytest.approx(by_name["flac"].probabilities, abs=1e-6)


def test_features_are_those_of_training_normalised_and_masked(av, bundles, media):
    """The file's inputs are the feature store's extraction (as training used) scaled by the bundle's normalisers;
    a modality the file lacks is one masked step (audio-only with the av model)."""
    from emotion_lib.features.runners import extract_clip
    from emotion_lib.training.bundle import load_bundle

    bundle = load_bundle(bundles["av"])
    arrays = extract_clip({"audio_path": str(ANGER), "video_path": str(ANGER)}, AV)
    inputs = av.model_inputs(av.features.extract(ANGER))
    expected_audio = bundle.normalisers["audio"].transform(arrays["audio"])
    np.testing.assert_allclose(inputs["audio"][0], expected_audio, rtol=1e-5, atol=1e-5)
    mask = arrays["video_mask"].astype(bool)
    assert inputs["video_mask"][0].tolist() == mask.astype(float).tolist() and mask.any()
    expected_video = bundle.normalisers["video"].transform(arrays["video"], None, mask)
    np.testing.assert_allclose(inputs["video"][0], expected_video, rtol=1e-4, atol=1e-4)
    audio_only = av.model_inputs(av.features.extract(media["wav"]))
    assert audio_only["video"].shape[1] == 1 and not audio_only["video_mask"].any()
    assert audio_only["audio_mask"].all()


# ---- the timeline --------------------------------------------------------------------------------------------
def test_timeline_gives_probabilities_over_the_clip(av, media):
    video, audio, image = predict([ANGER, media["wav"], media["png"]], model=av, timeline=True)
    duration = sf.info(media["wav"]).duration
    for result, modalities in ((video, ("audio", "video")), (audio, ("audio",))):
        _check_answer(result, modalities)
        times, probabilities = result.timeline.times, result.timeline.probabilities
        assert len(times) >= duration * AV.fps - 3 and np.all(np.diff(times) > 0)
        assert times[0] >= 0 and times[-1] <= duration + 0.5
        assert probabilities.shape == (len(times), len(EMOTIONS))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert image.ok and image.timeline is None and any("no timeline" in note for note in image.notes)
    assert predict(ANGER, model=av).timeline is None


# ---- bad input -----------------------------------------------------------------------------------------------
def test_bad_files_are_named_and_the_good_ones_still_answered(av, media):
    names = ["missing", "flv", "empty_wav", "text_mp4", "notes_txt", "silent_wav", "no_face_mp4", "blank_png", "wav"]
    results = predict([media[name] for name in names], model=av)
    assert [r.path for r in results] == [str(media[name]) for name in names]
    reasons = {
        "missing": "file not found",
        "empty_wav": "empty file",
        "text_mp4": "(cannot open the video|no decodable video frame)",
        "notes_txt": "unsupported file type '.txt'",
        "silent_wav": "silent audio",
        "no_face_mp4": "no face found",
        "blank_png": "no face found in the image",
    }
    for name, result in zip(names, results):
        if name in reasons:
            assert not result.ok and result.probabilities == {} and result.label is None
            assert str(media[name]) in result.error and re.search(reasons[name], result.error), result.error
            assert "Traceback" not in result.error
        else:
            _check_answer(result, ("audio", "video") if name == "flv" else ("audio",))


def test_a_model_answers_only_what_it_can_read(bundles, media):
    face, voice = FilePredictor(bundles["face"]), FilePredictor(bundles["voice"])
    wav, png, flv = predict([media["wav"], media["png"], ANGER], model=face)
    assert not wav.ok and str(media["wav"]) in wav.error and "a face" in wav.error
    _check_answer(png, ("video",))
    _check_answer(flv, ("video",))
    png, flv = predict([media["png"], ANGER], model=voice)
    assert not png.ok and "a voice" in png.error and str(media["png"]) in png.error
    _check_answer(flv, ("audio",))


def test_missing_and_mismatched_models_are_one_line_errors(bundles, media, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("emotion_lib.inference.predictor.PRETRAINED_DIR", tmp_path / "models")
    with pytest.raises(FileNotFoundError, match="python -m emotion_lib train --recipe av") as error:
        predict(ANGER, model="av")
    assert str(tmp_path / "models" / "av") in str(error.value)
    with pytest.raises(FileNotFoundError, match="model not found: .*nowhere"):
        predict(ANGER, model=tmp_path / "nowhere")
    with pytest.raises(ModelInputError, match="audio input has 30 features but openSMILE eGeMAPSv02 lld"):
        predict(ANGER, model=bundles["mismatch"])
    for model in ("face", str(bundles["mismatch"])):
        assert main(["predict", str(ANGER), "--model", model]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_keras_file_is_a_model_too_and_loaded_models_are_kept(bundles, tmp_path):
    inside = FilePredictor(bundles["voice"] / "model.keras")  # a file of a bundle: the bundle's settings apply
    assert set(inside.normalisers) == {"audio"} and inside.extraction == VOICE and inside.notes == ()
    bare = tmp_path / "bare.keras"
    shutil.copy(bundles["voice"] / "model.keras", bare)
    result = predict(ANGER, model=bare)
    _check_answer(result, ("audio",))
    assert "not a model bundle" in result.notes[0] and str(bare) in result.notes[0]
    assert load_predictor(bare) is load_predictor(bare)
    assert load_predictor(bare, cache=False) is not load_predictor(bare)


# ---- the TFLite route ------------------------------------------------------------------------------------------
def test_a_bundle_runs_its_tflite_model_and_agrees_with_keras(av, bundles, media):
    """A bundle carries ``model.tflite`` (any clip length): predict runs it, giving the Keras model's answer to float
    rounding on every kind of file."""
    keras = FilePredictor(bundles["av"], runtime="keras")
    assert av.engine == "tflite" and keras.engine == "keras"
    files = [ANGER, media["wav"], media["png"], media["mp4_silent_track"]]
    for lite, reference in zip(predict(files, model=av), predict(files, model=keras)):
        _check_answer(lite, reference.modalities)
        assert lite.probabilities == pytest.approx(reference.probabilities, abs=1e-5)


def test_a_bundle_without_tflite_model_runs_keras_until_one_is_added(bundles, tmp_path):
    from emotion_lib.training.bundle import MANIFEST, add_lite_exports

    old = shutil.copytree(bundles["voice"], tmp_path / "old_voice")
    manifest = json.loads((old / MANIFEST).read_text())
    del manifest["lite_model"], manifest["files"]["model.tflite"]
    (old / MANIFEST).write_text(json.dumps(manifest))
    (old / "model.tflite").unlink()
    assert FilePredictor(old).engine == "keras"
    with pytest.raises(ModelInputError, match=r"old_voice has no TFLite model \(model.tflite\).*add_lite_exports"):
        FilePredictor(old, runtime="tflite")
    keras_bytes = (old / "model.keras").read_bytes()
    add_lite_exports(old)
    assert (old / "model.keras").read_bytes() == keras_bytes
    answer, reference = predict(ANGER, model=FilePredictor(old)), predict(ANGER, model=FilePredictor(bundles["voice"]))
    assert answer.probabilities == pytest.approx(reference.probabilities, abs=1e-6)


def test_a_changed_tflite_model_fails_its_checksum(bundles, tmp_path):
    copy = shutil.copytree(bundles["voice"], tmp_path / "voice")
    with open(copy / "model.tflite", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelInputError, match=r"model\.tflite does not match its checksum"):
        FilePredictor(copy)


def test_the_shipped_face_network_copy_gives_the_keras_features():
    """The pretrained bundles carry the fer network in TFLite (converted from the installed fer package's file, whose
    checksum the manifest keeps): same faces, the same features to float rounding, another cache key."""
    from emotion_lib.features.faces.fer import FerBackend
    from emotion_lib.features.manifest import read_bundle_features
    from emotion_lib.features.video import read_frames

    network = read_bundle_features(PRETRAINED_DIR / "face").face_network
    assert network["backend"] == "fer" and network["options"] == {"output": "probabilities"}
    frames = list(read_frames(ANGER, 5.0)[0][:12])
    lite, keras = FerBackend("probabilities", lite_model=network["file"]), FerBackend("probabilities")
    (lite_embeddings, lite_mask), (embeddings, mask) = lite.embed(frames), keras.embed(frames)
    assert lite_mask.tolist() == mask.tolist() and mask.sum() >= 10
    np.testing.assert_allclose(lite_embeddings, embeddings, atol=1e-4)
    assert lite.config() != keras.config()


def test_a_face_network_copy_of_another_network_is_not_used(tmp_path):
    from emotion_lib.training.bundle import MANIFEST

    copy = shutil.copytree(PRETRAINED_DIR / "face", tmp_path / "face")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["face_network"]["source_sha256"] = "0" * 64  # converted from another emotion_model.hdf5
    (copy / MANIFEST).write_text(json.dumps(manifest))
    predictor = FilePredictor(copy)
    assert predictor.features.face.lite_model is None
    assert any("converted from another fer/emotion_model.hdf5" in note for note in predictor.notes)
    shipped = FilePredictor(PRETRAINED_DIR / "face")
    assert shipped.features.face.lite_model == PRETRAINED_DIR / "face" / "face_fer.tflite" and shipped.notes == ()


@pytest.mark.slow
def test_a_fresh_predict_command_answers_without_keras():
    """The cold path of ``python -m emotion_lib predict``: a pretrained bundle answered with nothing of the model,
    training, sequence or experiment packages imported (no Keras model, no other command's options built) and, with
    the LiteRT runtime installed, without importing TensorFlow at all."""
    code = (
        "import sys\n"
        "from emotion_lib.cli import main\n"
        "from emotion_lib.features.tflite import litert_available\n"
        "assert main(['predict', sys.argv[1], '--model', 'av', '--json']) == 0\n"
        "packages = ('models', 'training', 'sequences', 'experiments')\n"
        "heavy = {f'emotion_lib.{name}' for name in packages} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert not litert_available() or 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ANGER)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (answer,) = json.loads(done.stdout)
    assert answer["modalities"] == ["audio", "video"] and answer["label"] in EMOTIONS
    assert "deprecated" not in done.stderr  # TensorFlow's interpreter (without LiteRT) runs without its notice


# ---- the command line ----------------------------------------------------------------------------------------
def test_cli_json_csv_and_table_parse_back(bundles, media, capsys):
    files = [str(ANGER), str(media["png"]), str(media["missing"])]
    model = ["--model", str(bundles["av"])]
    assert main(["predict", *files, *model, "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert [a["path"] for a in answers] == files
    assert answers[0]["modalities"] == ["audio", "video"] and answers[1]["modalities"] == ["video"]
    for answer in answers[:2]:
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
    assert answers[2]["label"] is None and "file not found" in answers[2]["error"]

    assert main(["predict", *files[:1], *model, "--csv", "--timeline"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["time"] == "" and len(rows) > 5 and all(row["path"] == files[0] for row in rows)
    assert [float(row["time"]) for row in rows[1:]] == sorted(float(row["time"]) for row in rows[1:])
    for row in rows:
        assert sum(float(row[e]) for e in EMOTIONS) == pytest.approx(1.0, abs=1e-5)
        assert row["label"] == max(EMOTIONS, key=lambda e: float(row[e]))

    assert main(["predict", *files, *model]) == 0
    table = capsys.readouterr().out
    assert answers[0]["label"] in table.splitlines()[1] and f"error: {answers[2]['error']}" in table
    assert main(["predict", str(media["missing"]), str(media["notes_txt"]), *model]) == 1  # every file failed


@pytest.mark.slow
def test_python_m_emotion_lib_cli_predict_runs(bundles):
    done = subprocess.run(
        [sys.executable, "-m", "emotion_lib.cli", "predict", str(ANGER), "--model", str(bundles["voice"]), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (answer,) = json.loads(done.stdout)
    assert answer["modalities"] == ["audio"] and answer["label"] in EMOTIONS


def test_import_emotion_lib_stays_light_and_predict_is_lazy():
    code = (
        "import sys, emotion_lib\n"
        "assert 'tensorflow' not in sys.modules and 'emotion_lib.inference' not in sys.modules\n"
        "assert 'predict' in dir(emotion_lib)\n"
        "from emotion_lib.inference import predict\n"
        "assert emotion_lib.predict is predict\n"
        "try:\n    emotion_lib.no_such_name\nexcept AttributeError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "has no attribute 'no_such_name'" in done.stdout


# ---- the real sample -----------------------------------------------------------------------------------------
def test_the_sample_ships_with_its_licence_and_is_answered(av):
    clips = sorted(SAMPLE.glob("VideoFlash/*.flv"))
    assert [clip.name[9:12] for clip in clips] == ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    assert all(clip.name.startswith("1001_DFA_") for clip in clips)
    readme = (SAMPLE / "README.md").read_text()
    for words in ("Open Database License", "Database Contents License", "Cao", "Transactions on Affective Computing"):
        assert words in readme
    assert "never trained on actor 1001" in readme
    for result in predict(clips, model=av):
        _check_answer(result, ("audio", "video"))


def test_the_sample_is_a_tiny_crema_d_corpus_of_actor_1001():
    clips, report = load_corpus("crema-d", SAMPLE)
    assert list(clips["actor"].unique()) == ["1001"] and sorted(clips["emotion"]) == sorted(EMOTIONS)
    assert clips["video_path"].notna().all() and not report.skipped


def test_the_sample_is_byte_identical_to_the_shared_crema_d_clips(crema_d_dir):
    for clip in sorted(SAMPLE.glob("VideoFlash/*.flv")):
        assert clip.read_bytes() == (crema_d_dir / "VideoFlash" / clip.name).read_bytes()
