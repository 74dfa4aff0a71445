"""StreamingPredictor, the OpenCV demo app and the notebook widget's kernel side.

The logic is tested with a tiny Keras model built here (masked mean pooling, same input names as
``emotion_lib.model``) and a fake face backend; the real dlib backend and openSMILE run on a real clip
from ../shared/data when it is present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.labels import EMOTIONS, colour_bgr
from emotion_lib.paths import SAMPLE_CLIP
from emotion_lib.realtime.predictor import StreamingPredictor
from emotion_lib.realtime.replay import clip_stream, run_clip
from emotion_lib.realtime.window import ModelInputError, WindowModel, load_window_model

keras = pytest.importorskip("keras")

VIDEO_DIM = 8


def tiny_model(audio_dim: int = 25, video_dim: int = VIDEO_DIM, steps: int | None = None, seed: int = 0):
    """Masked mean of each modality -> Dense softmax over the six classes."""
    keras.utils.set_random_seed(seed)
    audio = keras.Input((steps, audio_dim), name="audio")
    audio_mask = keras.Input((steps,), name="audio_mask")
    video = keras.Input((steps, video_dim), name="video")
    video_mask = keras.Input((steps,), name="video_mask")

    def pool(x, mask):
        m = keras.ops.expand_dims(mask, -1)
        return keras.ops.sum(x * m, 1) / keras.ops.maximum(keras.ops.sum(m, 1), 1.0)

    hidden = keras.layers.Concatenate()([pool(audio, audio_mask), pool(video, video_mask)])
    out = keras.layers.Dense(len(EMOTIONS), activation="softmax")(hidden)
    inputs = {"audio": audio, "audio_mask": audio_mask, "video": video, "video_mask": video_mask}
    return keras.Model(inputs, out)


class FakeFaces:
    """Embedding = the frame's mean colour repeated; an all-black frame has no face."""

    dim = VIDEO_DIM

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, frames):
        self.calls += len(frames)
        frames = np.asarray(frames, dtype=np.float32)
        mask = frames.reshape(len(frames), -1).max(axis=1) > 0
        emb = np.repeat(frames.mean(axis=(1, 2, 3))[:, None] / 255.0, self.dim, axis=1) * mask[:, None]
        return emb.astype(np.float32), mask


def fake_lld(signal: np.ndarray, rate: int) -> np.ndarray:
    """openSMILE-like framing: n/160 - 4 frames of 25 values (the signal's RMS)."""
    frames = max(0, len(signal) // 160 - 4)
    return np.full((frames, 25), float(np.sqrt(np.mean(signal**2))), np.float32)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def make_predictor(model, window_size=6, **kwargs):
    kwargs.setdefault("video_fps", 10.0)
    kwargs.setdefault("face_backend", FakeFaces())
    kwargs.setdefault("audio_extractor", fake_lld)
    return StreamingPredictor(model, window_size, **kwargs)


def grey(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def test_frames_are_sampled_at_the_model_rate_and_the_window_slides(model):
    predictor = make_predictor(model, window_size=4, video_fps=10.0)
    sampled = [predictor.push_frame(grey(10 + i), i / 30.0) for i in range(30)]  # 1 s of a 30 fps camera
    assert sum(sampled) == 10
    assert predictor.face_backend.calls == 10
    video = predictor.window_inputs()["video"][0]
    assert video.shape == (4, VIDEO_DIM)
    # the window keeps the last 4 sampled frames (i = 18, 21, 24, 27), oldest first
    np.testing.assert_allclose(video[:, 0], np.array([28, 31, 34, 37]) / 255.0, rtol=1e-6)


def test_prediction_is_the_model_on_the_window_then_smoothed(model):
    predictor = make_predictor(model, smoothing=0.5)
    predictor.push_audio(np.full(3200, 0.1, np.float32))
    first = predictor.update(grey(50), 0.0)
    inputs = predictor.window_inputs()
    expected = np.asarray(model.predict(inputs, verbose=0))[0]
    np.testing.assert_allclose(first.raw_probabilities, expected, rtol=1e-5)
    np.testing.assert_allclose(first.probabilities, expected, rtol=1e-5)
    second = predictor.update(grey(200), 0.1, np.full(3200, 0.5, np.float32))
    raw = np.asarray(model.predict(predictor.window_inputs(), verbose=0))[0]
    np.testing.assert_allclose(second.probabilities, 0.5 * expected + 0.5 * raw, rtol=1e-5)
    assert second.probabilities.sum() == pytest.approx(1.0)
    assert second.label == EMOTIONS[int(np.argmax(second.probabilities))]
    assert not np.allclose(raw, expected)  # the window really changed


def test_masked_padding_does_not_change_the_prediction(model):
    """Valid frames first, padding masked: a short window predicts like the same frames without padding."""
    predictor = make_predictor(model, window_size=10, smoothing=0.0)
    predictor.push_audio(np.full(1600 * 4, 0.2, np.float32))
    pred = predictor.update(grey(90), 0.0)
    inputs = predictor.window_inputs()
    assert inputs["video_mask"].sum() == 1 and inputs["audio_mask"].sum() == 40
    unpadded = {
        "audio": inputs["audio"][:, :40],
        "audio_mask": inputs["audio_mask"][:, :40],
        "video": inputs["video"][:, :1],
        "video_mask": inputs["video_mask"][:, :1],
    }
    np.testing.assert_allclose(pred.raw_probabilities, np.asarray(model.predict(unpadded, verbose=0))[0], rtol=1e-5)


def test_audio_is_turned_into_lld_frames_at_100_per_second_and_resampled(model):
    predictor = make_predictor(model, window_size=6, video_fps=10.0)  # 0.6 s window = 60 audio frames
    assert predictor.audio_steps == 60
    assert predictor.push_audio(np.zeros(8000, np.float32) + 0.1) == 40  # 0.5 s: two 0.2 s hops, 0.1 s pending
    predictor.reset()
    added = predictor.push_audio(np.full(48000, 0.1, np.float32), sample_rate=48000)  # 1 s at 48 kHz
    assert added == 100
    assert predictor.window_inputs()["audio_mask"].sum() == 60  # the window keeps the last 0.6 s
    with pytest.raises(ModelInputError, match="mono"):
        predictor.push_audio(np.zeros((2, 3, 4)))


def test_no_face_and_silence_are_reported_without_crashing(model):
    predictor = make_predictor(model)
    nothing = predictor.update(grey(0), 0.0)  # black frame: no face, no audio at all
    assert not nothing.updated and not nothing.face_found and nothing.silent
    np.testing.assert_allclose(nothing.probabilities, np.full(6, 1 / 6))
    assert "no face in view" in nothing.message and "silence" in nothing.message
    silent = predictor.update(grey(0), 0.1, np.zeros(3200, np.float32))
    assert silent.updated and silent.silent and not silent.face_found
    assert predictor.window_inputs()["video_mask"].sum() == 0
    voiced = predictor.update(grey(120), 0.2, np.full(3200, 0.3, np.float32))
    assert voiced.face_found and voiced.message == ""
    assert voiced.face_fraction == pytest.approx(1 / 3)


def test_wrong_shapes_give_clear_errors(model, tmp_path):
    predictor = make_predictor(model)
    with pytest.raises(ModelInputError, match="128 values; the model expects 8"):
        predictor.push_embedding(np.zeros(128), True)
    with pytest.raises(ModelInputError, match=r"\(T, 25\)"):
        predictor.push_lld(np.zeros((5, 13)))
    with pytest.raises(ModelInputError, match="uint8 BGR"):
        predictor.push_frame(np.zeros((10, 10), np.float32), 0.0)
    with pytest.raises(ModelInputError, match="expects 20 time steps but the streaming window gives 6"):
        make_predictor(tiny_model(steps=20))
    spectrogram = keras.Input((None, 4), name="spectrogram")
    with pytest.raises(ModelInputError, match="do not match the expected"):
        WindowModel(keras.Model(spectrogram, keras.layers.Dense(6)(spectrogram)))
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        load_window_model(tmp_path / "absent.keras")
    with pytest.raises(ValueError, match="smoothing"):
        make_predictor(model, smoothing=1.0)


def test_a_model_with_the_wrong_number_of_classes_is_rejected():
    predictor = make_predictor(
        WindowModel(lambda inputs: np.ones((1, 7)), {"video": (None, VIDEO_DIM), "video_mask": (None,)})
    )
    with pytest.raises(ModelInputError, match="7 scores; expected 6"):
        predictor.update(grey(100), 0.0)


def test_saved_keras_model_loads_and_predicts_like_the_original(model, tmp_path):
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = make_predictor(load_window_model(path))
    direct = make_predictor(model)
    for p in (loaded, direct):
        p.push_audio(np.full(3200, 0.2, np.float32))
    np.testing.assert_allclose(
        loaded.update(grey(77), 0.0).probabilities, direct.update(grey(77), 0.0).probabilities, rtol=1e-5
    )
    (tmp_path / "corrupt.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelInputError, match="could not load model"):
        load_window_model(tmp_path / "corrupt.keras")


def test_audio_feeder_analyses_audio_in_the_background(model):
    from emotion_lib.realtime.replay import AudioFeeder

    predictor = make_predictor(model, window_size=20)  # 2 s window = 200 audio frames
    feeder = AudioFeeder(predictor, sample_rate=16000)
    for _ in range(5):
        feeder.put(np.full(1600, 0.1, np.float32))
    feeder.put(np.zeros((2, 2, 2)))  # a bad chunk is reported, the thread goes on
    feeder.put(np.full(1600, 0.1, np.float32))
    feeder.flush()
    feeder.close()
    assert predictor.window_inputs()["audio_mask"].sum() == 60  # 0.6 s in three 0.2 s hops
    assert "mono" in feeder.error


def test_a_model_bundle_brings_its_normalisers_and_extraction_settings(model, tmp_path, monkeypatch):
    from emotion_lib.features.normalise import Normaliser
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.training.bundle import NORMALISERS_FILE, save_bundle

    rng = np.random.default_rng(0)
    audio_norm = Normaliser("global").fit([rng.normal(3.0, 2.0, size=(50, 25))])
    video_norm = Normaliser("global").fit([rng.normal(-1.0, 0.5, size=(20, VIDEO_DIM))])
    extraction = ExtractionConfig(video_backend="fer", fps=10.0)
    config = ModelConfig(video_dim=VIDEO_DIM)
    path = save_bundle(tmp_path / "tiny", model, config, {"audio": audio_norm, "video": video_norm}, extraction)
    predictor = StreamingPredictor.from_path(path, 6, face_backend=FakeFaces(), audio_extractor=fake_lld)
    assert set(predictor.normalisers) == {"audio", "video"} and predictor.video_fps == 10.0
    lld = rng.normal(size=(4, 25)).astype(np.float32)
    predictor.push_lld(lld)
    predictor.push_embedding(np.full(VIDEO_DIM, 0.5), True)
    predictor.push_embedding(np.full(VIDEO_DIM, 0.5), False)  # no face: stays zero, masked
    inputs = predictor.window_inputs()
    np.testing.assert_allclose(inputs["audio"][0, :4], (lld - audio_norm.mean_) / audio_norm.std_, rtol=1e-5)
    np.testing.assert_allclose(inputs["video"][0, 0], (0.5 - video_norm.mean_) / video_norm.std_, rtol=1e-5)
    assert not inputs["video"][0, 1].any() and inputs["video_mask"][0, :2].tolist() == [1.0, 0.0]
    # without a face backend given, the bundle's is created with the extraction's options
    created = []
    monkeypatch.setattr(
        "emotion_lib.features.faces.registry.get_face_backend", lambda name, **options: created.append((name, options))
    )
    _ = StreamingPredictor.from_path(path, 6, audio_extractor=fake_lld).face_backend
    assert created == [("fer", extraction.backend_kwargs())]
    # a bare .keras model has no normalisers; a damaged bundle is a clear error naming the file
    model.save(tmp_path / "tiny.keras")
    assert StreamingPredictor.from_path(tmp_path / "tiny.keras", 6, video_fps=10.0).normalisers == {}
    (path / NORMALISERS_FILE).write_text('{"audio": {"mode": "global"}}')
    with pytest.raises(ModelInputError, match=r"normalisers\.json does not match its checksum"):
        StreamingPredictor.from_path(path, 6)


@pytest.mark.slow
def test_tflite_export_streams_like_the_keras_model_and_checks_its_fixed_window(tmp_path):
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.models.fusion import build_model
    from emotion_lib.training.bundle import save_bundle
    from emotion_lib.training.export import to_tflite

    config = ModelConfig(
        video_dim=VIDEO_DIM,
        conv_filters=8,
        rnn_units=8,
        video_rnn_units=8,
        attention_units=8,
        dense_units=8,
        window_video_frames=6,
        window_audio_frames=60,
    )
    model = build_model(config)
    exports = {"float32": to_tflite(model, config, "float32")}
    bundle = save_bundle(tmp_path / "small", model, config, {}, ExtractionConfig(fps=10.0), exports)
    results = []
    for path in (bundle, bundle / "model_float32.tflite"):  # a bundle's export still gets its settings
        predictor = StreamingPredictor.from_path(path, 6, face_backend=FakeFaces(), audio_extractor=fake_lld)
        assert predictor.video_fps == 10.0
        predictor.push_audio(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32))
        for i in range(4):
            prediction = predictor.update(grey(40 + 30 * i), i / 10)
        results.append(prediction.probabilities)
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)
    with pytest.raises(ModelInputError, match="expects 6 time steps but the streaming window gives 10"):
        make_predictor(load_window_model(bundle / "model_float32.tflite"), window_size=10)


# ---- the OpenCV app --------------------------------------------------------------------------------------


def test_dashboard_shows_the_label_in_its_colour_and_the_bars():
    from emotion_lib.realtime.app import draw_dashboard
    from emotion_lib.realtime.predictor import Prediction

    probs = np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.1])
    pred = Prediction(probs, probs, 1.0, True, 1.0, False)
    canvas = draw_dashboard(grey(60), pred, [probs, probs[::-1]], 800, 600)
    assert canvas.shape == (600, 800, 3)
    assert tuple(int(c) for c in canvas[15, 800 - 15]) == colour_bgr("happiness")  # label box
    happiness_bar = (canvas == np.array(colour_bgr("happiness"), np.uint8)).all(axis=2).sum()
    anger_bar = (canvas == np.array(colour_bgr("anger"), np.uint8)).all(axis=2).sum()
    assert happiness_bar > anger_bar > 0


def test_app_reports_missing_model_and_missing_camera(tmp_path, model, capsys, monkeypatch):
    import sys

    from emotion_lib.realtime.app import main, parse_args

    missing = ["--model", str(tmp_path / "none.keras"), "--headless", "--output", str(tmp_path / "o.mp4")]
    assert main(missing) == 1
    assert "model file not found" in capsys.readouterr().err
    path = tmp_path / "tiny.keras"
    model.save(path)
    wrong_backend = ["--model", str(path), "--source", "x.mp4", "--headless", "--output", str(tmp_path / "o.mp4")]
    assert main(wrong_backend) == 1  # the tiny model takes 8-d faces, dlib gives 128
    assert "expects 8-d face features but the 'dlib' backend gives 128" in capsys.readouterr().err
    dlib_sized = tmp_path / "dlib_sized.keras"
    tiny_model(video_dim=128).save(dlib_sized)
    monkeypatch.setattr(
        "emotion_lib.realtime.app.Microphone", lambda on_audio: type("M", (), {"error": "", "close": lambda s: None})()
    )
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00not a video" * 100)
    corrupt = [
        "--model",
        str(dlib_sized),
        "--source",
        str(tmp_path / "corrupt.mp4"),
        "--headless",
        "--output",
        str(tmp_path / "o.mp4"),
    ]
    assert main(corrupt) == 1
    assert "corrupt.mp4" in capsys.readouterr().err
    camera_97 = ["--model", str(dlib_sized), "--camera", "97", "--headless", "--max_frames", "3"]
    assert main([*camera_97, "--output", str(SAMPLE_CLIP)]) == 1  # the sample that would play instead is kept
    err = capsys.readouterr().err
    assert "camera" in err and ("no camera" in err or "could not be opened" in err or "denied" in err)
    assert "is the sample clip" in err and SAMPLE_CLIP.stat().st_size > 100_000
    assert main([*camera_97, "--output", str(tmp_path / "o.mp4")]) == 0  # no webcam: the real sample plays
    assert f"Playing the real sample clip instead: {SAMPLE_CLIP}" in capsys.readouterr().err
    assert (tmp_path / "o.mp4").stat().st_size > 0
    with pytest.raises(SystemExit):
        parse_args(["--model", str(path), "--headless"])  # headless needs --output
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["--model", str(path), "--source", "x.mp4"]) == 1
    assert "--headless --output" in capsys.readouterr().err


def test_the_demos_default_to_the_shipped_real_model_and_the_real_sample(tmp_path, corpus_3_actors):
    from emotion_lib.paths import MODELS_DIR
    from emotion_lib.realtime.replay import demo_clip
    from emotion_lib.realtime.window import DEMO_MODEL, demo_model_path

    assert demo_model_path("") == DEMO_MODEL and (DEMO_MODEL / "manifest.json").is_file()
    assert demo_model_path("synthetic", "synthetic") == MODELS_DIR / "synthetic_fusion"
    assert demo_model_path(tmp_path / "m") == tmp_path / "m"
    assert demo_clip("") == (SAMPLE_CLIP, None, "anger")
    assert demo_clip("x.mp4", "synthetic") == (Path("x.mp4"), None, None)
    video, audio, label = demo_clip("", "synthetic", "synthetic", str(corpus_3_actors), seed=1)
    assert video.is_file() and audio is not None and audio.is_file() and label in EMOTIONS


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_clip_runs_end_to_end_through_dlib_and_opensmile(ravdess_faces_dir, tmp_path):
    """A real RAVDESS face clip through the real face backend and openSMILE, then the headless app."""
    import cv2

    from emotion_lib.realtime.app import main

    clip = ravdess_faces_dir / "Actor_01" / "01-01-03-02-01-01-01.mp4"  # happy, strong
    model = tiny_model(video_dim=128)
    predictor = StreamingPredictor(model, 8, video_fps=5.0, face_backend="dlib")
    updates = run_clip(predictor, clip)
    frames = sum(1 for _ in clip_stream(clip))
    assert 0 < len(updates) <= frames
    assert np.mean([u.face_found for u in updates]) > 0.8  # real face crops: dlib finds the face
    assert not updates[-1].silent and predictor.window_inputs()["audio_mask"].sum() > 100
    assert all(np.isclose(u.probabilities.sum(), 1.0) for u in updates)
    # then silence and an empty scene through the real openSMILE and dlib: flagged, no crash
    predictor.push_audio(np.zeros(int(predictor.window_seconds * 16000), np.float32))
    empty = predictor.update(np.full((360, 480, 3), 30, np.uint8), 100.0)
    assert empty.silent and not empty.face_found and np.isfinite(empty.probabilities).all()
    assert empty.message.startswith("no face in view; silence")

    path, out = tmp_path / "m.keras", tmp_path / "demo.mp4"
    model.save(path)
    args = [
        "--model",
        str(path),
        "--window_size",
        "8",
        "--video_fps",
        "5",
        "--source",
        str(clip),
        "--headless",
        "--output",
        str(out),
        "--display_width",
        "400",
        "--display_height",
        "300",
    ]
    assert main(args) == 0
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (400, 300)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    cap.release()


# ---- the notebook widget (kernel side) ------------------------------------------------------------------


def test_widget_turns_browser_frames_into_predictions_and_acks_each(model, monkeypatch):
    import cv2

    from emotion_lib.realtime.widget import LiveEmotionWidget

    widget = LiveEmotionWidget(make_predictor(model), capture_fps=10.0)
    sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    jpeg = cv2.imencode(".jpg", grey(150))[1].tobytes()
    audio = np.full(4800, 0.2, np.float32).tobytes()  # 0.1 s at 48 kHz
    for i in range(3):
        widget._on_message(widget, {"type": "frame", "t": i / 10, "sample_rate": 48000}, [jpeg, audio])
    assert sent == [{"type": "ack"}] * 3
    assert widget.frames == 3 and widget.updates == 3 and widget.error == ""
    assert widget.audio_seconds == pytest.approx(0.3)
    assert widget.label in EMOTIONS and sum(widget.probabilities) == pytest.approx(1.0)
    widget._feeder.flush()  # 0.3 s of 48 kHz audio, analysed in the background: one 0.2 s hop = 20 frames
    assert widget.predictor.window_inputs()["audio_mask"].sum() == 20
    widget._on_message(widget, {"type": "frame", "t": 0.3, "sample_rate": 0}, [b"garbage"])
    assert widget.status == "could not decode the camera frame" and len(sent) == 4
    widget._on_message(widget, {"type": "frame"}, [jpeg])  # no timestamp: reported, still acked
    assert "KeyError" in widget.error and len(sent) == 5
    widget.stop()  # the Stop control: the audio thread ends
    assert not widget.running and widget._feeder is None


def test_widget_without_a_model_says_so():
    from emotion_lib.realtime.widget import LiveEmotionWidget

    assert "notebook 04" in LiveEmotionWidget(None).error


def test_app_refuses_to_write_over_its_source(tmp_path, capsys):
    """--output equal to --source (also through a link) is refused before anything opens: the input survives."""
    from emotion_lib.realtime.app import main

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"the user's recording")
    (tmp_path / "link.mp4").symlink_to(clip)
    for output in (clip, tmp_path / "link.mp4", tmp_path / "." / "clip.mp4"):
        with pytest.raises(SystemExit) as exit_info:
            main(["--model", "m.keras", "--source", str(clip), "--headless", "--output", str(output)])
        assert exit_info.value.code == 2
        assert "is the --source video itself" in capsys.readouterr().err
    assert clip.read_bytes() == b"the user's recording"


def test_widget_frames_decode_from_png_and_jpeg_and_garbage_is_none():
    import cv2

    from emotion_lib.realtime.widget import decode_image

    frame = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(cv2.imencode(".png", frame)[1].tobytes()), frame)  # PNG is lossless
    jpeg = decode_image(cv2.imencode(".jpg", grey(120))[1].tobytes())
    assert jpeg.shape == (48, 64, 3) and np.abs(jpeg.astype(int) - 120).max() <= 2
    assert decode_image(b"not an image") is None and decode_image(b"") is None


# ---- the ipywebrtc capture (kernel side; the browser's part is played here) --------------------------------


@pytest.fixture(scope="module")
def opus_webm(tmp_path_factory) -> bytes:
    """One second of a 440 Hz tone at 48 kHz as webm/Opus, the format of ipywebrtc's AudioRecorder."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (bash scripts/install_system_deps.sh)")
    path = tmp_path_factory.mktemp("webm") / "chunk.webm"
    tone = "sine=frequency=440:sample_rate=48000:duration=1"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", tone, "-c:a", "libopus", str(path)]
    subprocess.run(cmd, check=True)
    return path.read_bytes()


def test_an_audio_recorder_chunk_decodes_to_16_khz_mono(opus_webm):
    from emotion_lib.features.audio import AudioError
    from emotion_lib.realtime.webrtc import decode_audio_chunk

    samples = decode_audio_chunk(opus_webm)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 16_000) <= 400  # one second, give or take the codec's padding
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * 16_000 / samples.size == pytest.approx(440, abs=5)
    with pytest.raises(AudioError, match="microphone.webm"):
        decode_audio_chunk(b"")


def test_webrtc_demo_feeds_snapshots_and_audio_chunks_through_the_widget_loop(model, opus_webm, monkeypatch):
    import cv2

    from emotion_lib.realtime import webrtc

    clock = iter(np.arange(0.0, 100.0, 0.05))  # every call to the clock is 50 ms later
    monkeypatch.setattr(webrtc, "monotonic", lambda: float(next(clock)))
    demo = webrtc.WebRTCLiveDemo(make_predictor(model), capture_fps=10.0, audio_chunk_s=0.0)
    assert demo.children == (demo.panel,) and not demo.panel.browser_capture
    demo.start()  # Start: camera and microphone open, the first snapshot and audio chunk are asked for
    camera, images, audio = demo.camera, demo.image_recorder, demo.audio_recorder
    assert demo.children == (camera, demo.panel)
    assert camera.constraints["audio"] is False and demo.microphone.constraints == {"audio": True, "video": False}
    assert images.recording and audio.recording
    png = cv2.imencode(".png", grey(150))[1].tobytes()
    for _ in range(3):  # the browser: the snapshot's bytes, then recording back to False
        images.image.value = png
        images.recording = False
        assert images.recording  # no event loop here: the next snapshot is asked for at once
    assert demo.panel.frames == 3 and demo.panel.updates == 3 and demo.panel.error == ""
    assert demo.panel.label in EMOTIONS and len(demo.latencies_s) == len(demo.history) == 3
    assert not audio.recording  # the frames ended the (0 s) audio chunk
    audio.audio.value = opus_webm  # the browser: the chunk's recording
    assert audio.recording and demo.panel.audio_rate == 16_000
    assert demo.panel.audio_seconds == pytest.approx(1.0, abs=0.03)
    demo.panel._feeder.flush()
    assert demo.panel.predictor.window_inputs()["audio_mask"].sum() > 0
    images.image.value = b"garbage"
    images.recording = False
    assert demo.panel.status == "could not decode the camera frame"
    demo.stop()  # Stop: the ipywebrtc widgets close (the browser stops their tracks) and go from the display
    assert demo.children == (demo.panel,) and demo.camera is None and camera.comm is None
    images.recording = False  # a late snapshot of the closed recorder is ignored
    assert demo.panel.frames == 4


def test_live_demo_chooses_the_capture(model, monkeypatch):
    from emotion_lib.realtime import webrtc
    from emotion_lib.realtime.widget import LiveEmotionWidget

    predictor = make_predictor(model)
    assert isinstance(webrtc.live_demo(predictor), webrtc.WebRTCLiveDemo)
    anywidget = webrtc.live_demo(predictor, "anywidget", capture_fps=5.0)
    assert isinstance(anywidget, LiveEmotionWidget) and anywidget.browser_capture and anywidget.capture_fps == 5.0
    with pytest.raises(ValueError, match="unknown capture 'webcam'"):
        webrtc.live_demo(predictor, "webcam")
    monkeypatch.setattr(webrtc, "webrtc_available", lambda: False)
    assert isinstance(webrtc.live_demo(predictor), LiveEmotionWidget)
    with pytest.raises(ImportError, match="ipywebrtc"):
        webrtc.live_demo(predictor, "ipywebrtc")
