"""Model bundles: a round trip predicts identically; missing, corrupt or inconsistent files are named."""

import hashlib
import json

import numpy as np
import pytest
from tiny_models import TINY_MODEL, TINY_WINDOWS

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.fusion import build_model
from emotion_lib.sequences.data import random_clips
from emotion_lib.training.bundle import (
    MANIFEST,
    MODEL_FILE,
    NORMALISERS_FILE,
    BundleError,
    load_bundle,
    read_manifest,
    save_bundle,
)
from emotion_lib.training.export import predict

TINY = {**TINY_MODEL, **TINY_WINDOWS}
EXTRACTION = ExtractionConfig(audio_feature_set="ComParE_2016", video_backend="fer", fps=4.0)


@pytest.fixture(scope="module")
def data():
    return random_clips(8, seed=0, audio_dim=5, video_dim=4, audio_frames=(20, 40), video_frames=(3, 6))


@pytest.fixture(scope="module")
def trained():
    config = ModelConfig(**TINY)
    model = build_model(config)
    model.get_layer("batch_norm").moving_mean.assign(np.linspace(-1, 1, 8).astype(np.float32))  # non-default state
    rng = np.random.default_rng(0)
    normalisers = {
        "audio": Normaliser("global").fit([rng.normal(2.0, 3.0, (30, 5))]),
        "video": Normaliser("global").fit([rng.normal(-1.0, 0.5, (10, 4))]).state(),  # a state dict works too
    }
    return config, model, normalisers


@pytest.fixture()
def bundle_path(tmp_path, trained):
    config, model, normalisers = trained
    meta = {"corpus": "synthetic", "protocol": "actor-disjoint split, seed 0"}
    return save_bundle(tmp_path / "fusion", model, config, normalisers, EXTRACTION, {"int8": b"flatbuffer"}, meta)


def test_round_trip_gives_identical_predictions_and_settings(bundle_path, trained, data):
    config, model, normalisers = trained
    bundle = load_bundle(bundle_path)
    inputs = data.make_batch(range(6))
    np.testing.assert_array_equal(predict(bundle.model, inputs), predict(model, inputs))
    assert bundle.config == config and bundle.extraction == EXTRACTION
    assert bundle.metadata == {"corpus": "synthetic", "protocol": "actor-disjoint split, seed 0"}
    assert bundle.exports == {"int8": bundle_path / "model_int8.tflite"}
    assert bundle.exports["int8"].read_bytes() == b"flatbuffer"
    x = np.ones((3, 5))
    np.testing.assert_array_equal(bundle.normalisers["audio"].transform(x), normalisers["audio"].transform(x))
    assert set(bundle.normalisers) == {"audio", "video"}
    files = read_manifest(bundle_path)["files"]
    tflite = {"model_int8.tflite", "model.tflite", "face_fer.tflite"}
    assert set(files) == {"model.keras", "config.json", "normalisers.json", *tflite}
    assert all(len(entry["sha256"]) == 64 and entry["role"] for entry in files.values())


def test_the_tflite_model_runs_any_clip_length_as_keras_does(bundle_path, trained, data):
    """``model.tflite`` keeps the free time axis: clips of any length, the Keras probabilities to float rounding; the
    fer face network travels as ``face_fer.tflite`` with the checksum of the network file it was made from."""
    from emotion_lib.features.faces.fer import FerBackend
    from emotion_lib.features.manifest import sha256
    from emotion_lib.features.tflite import LiteModel

    _, model, _ = trained
    bundle = load_bundle(bundle_path)
    assert bundle.lite_model == bundle_path / "model.tflite"
    lite = LiteModel(bundle.lite_model)
    assert lite.shapes["audio"] == (1, None, 5) and lite.shapes["video_mask"] == (1, None)
    lengths = set()
    for i in range(len(data)):
        one = data.make_batch([i])
        lengths.add(one["audio"].shape[1])
        np.testing.assert_allclose(lite(one), predict(model, one), atol=1e-5)
    assert len(lengths) > 3
    network = bundle.face_network
    assert network["file"] == bundle_path / "face_fer.tflite" and network["backend"] == "fer"
    assert network["source_sha256"] == sha256(FerBackend.network_source()) and network["options"] == {}
    chips = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 1)).astype(np.float32)
    reference = FerBackend().network()([chips], training=False)
    face = LiteModel(network["file"])
    np.testing.assert_allclose(face({name: chips for name in face.inputs}), reference, atol=1e-5)


def test_saving_again_replaces_the_bundle_but_never_another_folder(bundle_path, trained, tmp_path):
    config, model, normalisers = trained
    save_bundle(bundle_path, model, config, normalisers, EXTRACTION, lite=False)
    again = load_bundle(bundle_path)
    assert again.exports == {} and not (bundle_path / "model_int8.tflite").exists()
    assert again.lite_model is None and again.face_network == {} and not (bundle_path / "model.tflite").exists()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="is not a model bundle"):
        save_bundle(tmp_path / "notes", model, config, normalisers, EXTRACTION)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_missing_bundle_and_missing_files_are_named(bundle_path, tmp_path):
    with pytest.raises(BundleError, match="model bundle not found: .*absent"):
        load_bundle(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_bundle(tmp_path / "empty")
    (bundle_path / NORMALISERS_FILE).unlink()
    with pytest.raises(BundleError, match=r"normalisers\.json \(feature normalisers\) is missing"):
        load_bundle(bundle_path)


def test_corrupt_files_and_checksum_mismatches_are_named(bundle_path):
    manifest = (bundle_path / MANIFEST).read_text()
    (bundle_path / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="cannot read the bundle manifest .*manifest.json"):
        load_bundle(bundle_path)
    (bundle_path / MANIFEST).write_text(manifest)
    (bundle_path / MODEL_FILE).write_bytes(b"not a zip")
    with pytest.raises(BundleError, match=r"model\.keras does not match its checksum"):
        load_bundle(bundle_path)


def test_a_model_that_does_not_fit_its_configuration_is_rejected(bundle_path, trained, tmp_path):
    config, model, normalisers = trained
    with pytest.raises(BundleError, match="input 'audio' has 5 features but the configuration says audio_dim=7"):
        save_bundle(tmp_path / "wrong", model, config.replace(audio_dim=7), normalisers, EXTRACTION)
    with pytest.raises(BundleError, match="need"):
        save_bundle(tmp_path / "wrong", model, config.replace(modalities=("audio",)), normalisers, EXTRACTION)
    assert not (tmp_path / "wrong").exists()
    # a configuration edited after saving: the checksum catches it; with the checksum updated, the width check does
    # (the normalisers' widths are checked before the model is loaded: the TensorFlow-free reading checks them too)
    manifest = json.loads((bundle_path / MANIFEST).read_text())
    (bundle_path / "config.json").write_text(config.replace(video_dim=9).to_json())
    with pytest.raises(BundleError, match="config.json does not match its checksum"):
        load_bundle(bundle_path)
    digest = hashlib.sha256((bundle_path / "config.json").read_bytes()).hexdigest()
    manifest["files"]["config.json"]["sha256"] = digest
    (bundle_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"normalisers\.json: the video normaliser has 4 features .* expects 9"):
        load_bundle(bundle_path)
