"""Saving and loading (.keras), clear errors for bad files and shapes, TFLite float16/int8 exports."""

import numpy as np
import pytest
from tiny_models import TINY_MODEL, TINY_WINDOWS

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.fusion import build_model
from emotion_lib.sequences.data import random_clips
from emotion_lib.training.export import (
    InputShapeError,
    ModelFileError,
    TFLiteRunner,
    accuracy_change,
    clip_windows,
    export_tflite_models,
    load_model,
    predict,
    save_model,
    to_tflite,
    to_tflite_any_length,
    write_tflite,
)

TINY = {**TINY_MODEL, "transformer_ff": 12, **TINY_WINDOWS}


@pytest.fixture(scope="module")
def data():
    return random_clips(12, seed=0, audio_dim=5, video_dim=4, audio_frames=(20, 40), video_frames=(3, 6))


@pytest.fixture(scope="module")
def fusion():
    config = ModelConfig(**TINY, cross_modal=True)
    return config, build_model(config)


@pytest.mark.parametrize(
    "encoder, pooling", [("bilstm", "attention"), ("transformer", "attention"), ("bilstm", "mean")]
)
def test_keras_reload_gives_identical_predictions(tmp_path, data, encoder, pooling):
    config = ModelConfig(**TINY, encoder=encoder, cross_modal=True, pooling=pooling)
    model = build_model(config)
    model.get_layer("batch_norm").moving_mean.assign(np.linspace(-1, 1, 8).astype(np.float32))  # non-default state
    path = save_model(model, tmp_path / "m.keras", config)
    assert ModelConfig.load(tmp_path / "m.json") == config
    reloaded = load_model(path)
    inputs = data.make_batch(range(6))
    np.testing.assert_array_equal(predict(reloaded, inputs), predict(model, inputs))


def test_missing_and_corrupt_model_files_give_clear_errors(tmp_path, fusion):
    with pytest.raises(ModelFileError, match="model file not found: .*absent.keras"):
        load_model(tmp_path / "absent.keras")
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(ModelFileError, match="garbage.keras is not a .keras model archive"):
        load_model(garbage)
    config, model = fusion
    good = save_model(model, tmp_path / "good.keras")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated.keras"):
        load_model(truncated)
    with pytest.raises(ValueError, match="must end in .keras"):
        save_model(model, tmp_path / "m.h5")


def test_wrong_input_shapes_name_expected_and_received_shapes(fusion, data, tmp_path):
    config, model = fusion
    inputs = data.make_batch([1])
    eGeMAPS_functionals = {**inputs, "audio": np.zeros((1, 30, 88), np.float32), "audio_mask": np.ones((1, 30))}
    with pytest.raises(
        InputShapeError,
        match=r"'audio': the model expects shape \(any, any, 5\), "
        r"received \(1, 30, 88\)",
    ):
        predict(model, eGeMAPS_functionals)
    with pytest.raises(InputShapeError, match=r"missing model inputs \['video', 'video_mask'\]"):
        predict(model, {k: inputs[k] for k in ("audio", "audio_mask")})
    path = save_model(model, tmp_path / "fusion.keras")
    with pytest.raises(
        InputShapeError,
        match=r"input 'audio' expects shape \(any, any, 5\), received "
        r"features of shape \(any, any, 88\)",
    ):
        load_model(path, feature_dims={"audio": 88, "video": 4})
    assert load_model(path, feature_dims={"audio": 5, "video": 4}).name == model.name
    short_mask = {**inputs, "video_mask": inputs["video_mask"][:, :1], "video": np.zeros((1, 3, 4), np.float32)}
    with pytest.raises(InputShapeError, match="video_mask has 1"):
        predict(model, short_mask)


@pytest.mark.slow
def test_tflite_exports_run_and_track_the_keras_model(fusion, data, tmp_path):
    config, model = fusion
    exports = export_tflite_models(model, config, data, modes=("float32", "float16", "int8"))
    windows = clip_windows(data, config)
    reference = np.concatenate([predict(model, w) for w in windows])
    tolerance = {"float32": 1e-4, "float16": 2e-2, "int8": 0.2}
    for mode, flatbuffer in exports.items():
        runner = TFLiteRunner(write_tflite(flatbuffer, tmp_path / f"m_{mode}.tflite"))
        assert runner.shapes["audio"] == (1, 24, 5) and runner.shapes["video_mask"] == (1, 4)
        probs = np.concatenate([runner(w) for w in windows])
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-2)  # int8 softmax steps are 1/256
        np.testing.assert_allclose(probs, reference, atol=tolerance[mode], err_msg=mode)
        dtypes = {d["dtype"] for d in runner.interpreter.get_tensor_details()}
        assert {"float32": np.float32, "float16": np.float16, "int8": np.int8}[mode] in dtypes
    with pytest.raises(InputShapeError, match=r"expects shape \(1, 24, 5\), received \(1, 30, 5\)"):
        runner({**windows[0], "audio": np.zeros((1, 30, 5), np.float32)})
    change = accuracy_change(model, {"int8": exports["int8"]}, data, config)
    assert set(change) == {"keras", "int8", "int8_minus_keras"}
    assert change["int8_minus_keras"] == pytest.approx(change["int8"] - change["keras"])
    assert change["keras"] == np.mean(reference.argmax(1) == data.labels)  # one batch = window by window


def test_tflite_runner_rejects_missing_and_garbage_files(tmp_path):
    with pytest.raises(ModelFileError, match="TFLite model not found"):
        TFLiteRunner(tmp_path / "none.tflite")
    with pytest.raises(ModelFileError, match="cannot read TFLite model"):
        TFLiteRunner(b"\x00" * 64)
    with pytest.raises(ValueError, match="representative"):
        to_tflite(
            build_model(ModelConfig(**TINY, modalities=("audio",))), ModelConfig(**TINY, modalities=("audio",)), "int8"
        )


def test_transformer_model_exports_to_tflite(data):
    config = ModelConfig(**TINY, encoder="transformer")
    model = build_model(config)
    runner = TFLiteRunner(to_tflite(model, config, "float32"))
    for window in clip_windows(data, config, limit=3):
        np.testing.assert_allclose(runner(window), predict(model, window), atol=1e-4)


@pytest.mark.parametrize("encoder", ["bilstm", "transformer"])
def test_any_length_export_agrees_with_keras_on_every_clip(data, encoder):
    """The float32 export with a free time axis (what predict runs): every clip length, Keras's probabilities."""
    from emotion_lib.features.tflite import LiteModel

    config = ModelConfig(**TINY, encoder=encoder, cross_modal=True)
    model = build_model(config)
    model.get_layer("batch_norm").moving_mean.assign(np.linspace(-1, 1, 8).astype(np.float32))
    lite = LiteModel(to_tflite_any_length(model), runtime="tensorflow")
    free = {"audio": (1, None, 5), "audio_mask": (1, None), "video": (1, None, 4), "video_mask": (1, None)}
    assert lite.shapes == free
    for i in range(len(data)):
        one = data.make_batch([i])
        np.testing.assert_allclose(lite(one), predict(model, one), atol=1e-5)
    with pytest.raises(ValueError, match=r"'audio': the TFLite model takes shape \(1, any, 5\), received \(2, 30, 5\)"):
        lite({**data.make_batch([0]), "audio": np.zeros((2, 30, 5), np.float32)})  # the batch axis is fixed
