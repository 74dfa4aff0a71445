"""``predict`` and the streaming predictor with a model that has the utterance input (openSMILE functionals per clip).

The model is a tiny voice model trained for a few steps on random features (eGeMAPS 25-d frames, 88-d eGeMAPS
functionals), its utterance normaliser fitted on the functionals of the repository's real CREMA-D sample; the clips
answered are real RAVDESS clips from ../shared/data and silent / too short files written here.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from tiny_models import TINY_MODEL, TINY_WINDOWS

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.features.audio import AudioFeatureExtractor, load_audio
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.inference import FilePredictor, predict
from emotion_lib.labels import EMOTIONS
from emotion_lib.paths import SAMPLES_DIR
from emotion_lib.realtime.predictor import SAMPLE_RATE, StreamingPredictor

FUNCTIONALS = AudioFeatureExtractor("eGeMAPSv02", "functionals")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny eGeMAPS voice model with the eGeMAPS functionals as its utterance input, saved as a bundle."""
    import keras

    from emotion_lib.models.config import ModelConfig
    from emotion_lib.models.fusion import build_model
    from emotion_lib.sequences.data import SequenceData, random_clips
    from emotion_lib.training.bundle import save_bundle

    config = ModelConfig(
        **{**TINY_MODEL, **TINY_WINDOWS, "audio_dim": 25},
        modalities=("audio",),
        utterance_features="eGeMAPSv02",
        utterance_dim=FUNCTIONALS.dim,
        utterance_units=16,  # with 4 ReLU units, an unseeded model could leave all four dead for a clip
    )
    keras.utils.set_random_seed(3)
    clips = random_clips(12, seed=3, audio_dim=25, audio_frames=(30, 60), no_video_every=1)
    vectors = np.random.default_rng(3).normal(0, 1, (12, FUNCTIONALS.dim)) + clips.labels[:, None]
    data = SequenceData(clips.audio, clips.labels, clips.names, utterance=vectors)
    model = build_model(config)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(data.make_batch(range(12), config.input_groups), np.eye(6)[data.labels], epochs=2, verbose=0)
    samples = sorted((SAMPLES_DIR / "crema-d" / "VideoFlash").glob("*.flv"))
    lld = AudioFeatureExtractor("eGeMAPSv02", "lld")
    signals = [load_audio(path) for path in samples]
    normalisers = {
        "audio": Normaliser("global").fit([lld.extract(s) for s in signals]),
        "utterance": Normaliser("global").fit([np.vstack([FUNCTIONALS.extract(s) for s in signals])]),
    }
    extraction = ExtractionConfig(video_backend=None)
    return save_bundle(tmp_path_factory.mktemp("bundles") / "voice_utterance", model, config, normalisers, extraction)


@pytest.fixture(scope="module")
def clip(ravdess_dir):
    return sorted(ravdess_dir.glob("Actor_02/*.flac"))[0]


def test_a_real_clip_gets_its_normalised_functionals_and_tflite_agrees_with_keras(bundle, clip):
    lite, keras_route = FilePredictor(bundle), FilePredictor(bundle, runtime="keras")
    assert lite.engine == "tflite" and keras_route.engine == "keras"
    features = lite.features.extract(clip)
    expected = lite.normalisers["utterance"].transform(FUNCTIONALS.extract_file(clip))
    inputs = lite.model_inputs(features)
    np.testing.assert_allclose(inputs["utterance"], expected, rtol=1e-6)
    assert inputs["utterance"].shape == (1, FUNCTIONALS.dim) and inputs["audio"].shape[1] > 100
    answer, reference = predict(clip, lite, cache=False), predict(clip, keras_route, cache=False)
    assert answer.ok and answer.modalities == ("audio",), answer.error
    np.testing.assert_allclose(list(answer.probabilities.values()), list(reference.probabilities.values()), atol=1e-5)
    moved = lite.probabilities(features.__class__(features.audio, utterance=features.utterance * 2.0))
    assert not np.allclose(moved, lite.probabilities(features), atol=1e-5)  # the vector reaches the answer


def test_silent_and_too_short_audio_are_a_note_per_file_not_a_traceback(bundle, clip, tmp_path):
    silent, short = tmp_path / "silent.wav", tmp_path / "short.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    noise = np.random.default_rng(0).normal(0, 0.1, 800).astype(np.float32)  # 0.05 s: below openSMILE's minimum
    sf.write(short, noise, 16000)
    results = predict([silent, short, clip], bundle, cache=False)
    assert "silent audio" in results[0].error and str(silent) in results[0].error
    assert "too short" in results[1].error and str(short) in results[1].error
    assert results[2].ok, results[2].error


def test_the_timeline_feeds_each_window_its_own_functionals(bundle, clip):
    predictor = FilePredictor(bundle)
    series = predict(clip, predictor, timeline=True, cache=False).timeline
    assert len(series.times) > 5 and np.allclose(series.probabilities.sum(axis=1), 1.0, atol=1e-6)
    streaming = StreamingPredictor.from_path(bundle, window_size=predictor.window_frames, smoothing=0.0)
    assert np.all(streaming.window_inputs()["utterance"] == 0.0)  # no audio yet: the training mean
    signal = load_audio(clip)
    streaming.push_audio(signal[: 2 * SAMPLE_RATE])
    window = streaming.window_inputs()
    recent = signal[: 2 * SAMPLE_RATE][-int(streaming.window_seconds * SAMPLE_RATE) :]
    expected = streaming.normalisers["utterance"].transform(FUNCTIONALS.extract(recent))
    np.testing.assert_allclose(window["utterance"], expected, rtol=1e-5)
    prediction = streaming.predict(2.0)
    assert prediction.updated and prediction.label in EMOTIONS
    streaming.push_audio(np.zeros(2 * SAMPLE_RATE, np.float32))  # the window is silent now
    assert np.all(streaming.window_inputs()["utterance"] == 0.0)
