"""The branched model: padding invariance, missing video, audio-only / video-only, switches, config JSON,
the ablation variants."""

import json

import keras
import numpy as np
import pytest
from tiny_models import TINY_MODEL

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.experiments.ablations import ABLATIONS, ablation_variants
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.fusion import attention_model, build_model
from emotion_lib.sequences.data import random_clips

TINY = {**TINY_MODEL, "transformer_ff": 12}


def _run(model, inputs):
    return (
        {k: np.asarray(v) for k, v in model(inputs, training=False).items()}
        if isinstance(model.output, dict)
        else np.asarray(model(inputs, training=False))
    )


def _pad_clip(inputs: dict, audio_extra: int, video_extra: int) -> dict:
    rng = np.random.default_rng(9)
    out = {}
    for key, extra in (("audio", audio_extra), ("video", video_extra)):
        if key in inputs:
            junk = rng.normal(size=(1, extra, inputs[key].shape[2])).astype(np.float32) * 10
            out[key] = np.concatenate([inputs[key], junk], axis=1)
            out[f"{key}_mask"] = np.concatenate([inputs[f"{key}_mask"], np.zeros((1, extra), np.float32)], axis=1)
    return out


@pytest.mark.parametrize(
    "changes",
    [
        dict(),
        dict(encoder="transformer"),
        dict(cross_modal=True),
        dict(modalities=("audio",)),
        dict(modalities=("video",)),
        dict(pooling="mean"),
        dict(pooling="mean", encoder="transformer", cross_modal=True),
        dict(modalities=("audio",), input_statistics=("mean", "std", "max", "min"), statistics_dropout=0.2, l2=1e-3),
        dict(input_statistics=("mean", "std")),
    ],
    ids=[
        "fusion-bilstm",
        "fusion-transformer",
        "cross-modal",
        "audio-only",
        "video-only",
        "mean-pooling",
        "mean-pooling-transformer-cross-modal",
        "audio-statistics",
        "fusion-statistics",
    ],
)
def test_padding_a_clip_with_extra_steps_does_not_change_its_prediction(changes):
    config = ModelConfig(**TINY, **changes)
    model = build_model(config)
    data = random_clips(4, seed=0, audio_dim=5, video_dim=4)
    for clip in (1, 0):  # clip 0 has no video, clip 1 has video with a faceless frame or two
        inputs = data.make_batch([clip], config.modalities)
        alone = _run(model, inputs)
        padded = _run(model, _pad_clip(inputs, 37, 6))
        np.testing.assert_allclose(padded, alone, rtol=1e-5, atol=1e-6)
        assert alone.shape == (1, 6) and alone.sum() == pytest.approx(1.0, abs=1e-5)
    assert sorted(model.input) == sorted(k for m in config.modalities for k in (m, f"{m}_mask"))


def test_a_clip_without_video_ignores_whatever_is_in_the_video_input():
    model = build_model(ModelConfig(**TINY, cross_modal=True))
    data = random_clips(3, seed=1, audio_dim=5, video_dim=4)
    inputs = data.make_batch([0])  # no video: one all-masked step
    noisy = {**inputs, "video": np.full((1, 5, 4), 3.0, np.float32), "video_mask": np.zeros((1, 5), np.float32)}
    np.testing.assert_allclose(_run(model, noisy), _run(model, inputs), atol=1e-6)
    with_face = {**noisy, "video_mask": np.ones((1, 5), np.float32)}
    assert not np.allclose(_run(model, with_face), _run(model, inputs), atol=1e-6)


def test_attention_model_returns_normalised_weights_over_valid_steps():
    config = ModelConfig(**TINY)
    model = build_model(config)
    data = random_clips(6, seed=2, audio_dim=5, video_dim=4)
    inputs = data.make_batch([1, 2])
    weights = _run(attention_model(model), inputs)
    audio_steps = inputs["audio_mask"][:, :: config.conv_strides]
    np.testing.assert_allclose(weights["audio"].sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(weights["audio"][audio_steps == 0], 0.0)
    np.testing.assert_array_equal(weights["video"][inputs["video_mask"] == 0], 0.0)
    with pytest.raises(ValueError, match="mean-pooling model.*no attention weights"):
        attention_model(build_model(ModelConfig(**TINY, pooling="mean")))


def test_mean_pooling_ignores_masked_face_frames_and_a_faceless_clip_gives_no_nan():
    model = build_model(ModelConfig(**TINY, pooling="mean"))
    assert [layer.name for layer in model.layers if "_mean" in layer.name] == ["audio_mean", "video_mean"]
    data = random_clips(4, seed=3, audio_dim=5, video_dim=4)
    inputs = data.make_batch([1])
    inputs["video_mask"][0, 1] = 0.0  # a faceless frame: whatever is in it must not count
    reference = _run(model, inputs)
    junk = inputs["video"].copy()
    junk[0, 1] = 100.0
    np.testing.assert_allclose(_run(model, {**inputs, "video": junk}), reference, rtol=1e-5, atol=1e-6)
    with_face = {**inputs, "video": junk, "video_mask": np.ones_like(inputs["video_mask"])}
    assert not np.allclose(_run(model, with_face), reference, atol=1e-6)
    no_valid_step = {**inputs, "video_mask": np.zeros_like(inputs["video_mask"])}
    pooled = keras.Model(model.inputs, model.get_layer("video_mean").output)(no_valid_step, training=False)
    np.testing.assert_array_equal(np.asarray(pooled), 0.0)
    assert np.isfinite(_run(model, no_valid_step)).all()


def test_model_config_json_round_trip_and_validation(tmp_path):
    config = ModelConfig(
        **TINY, encoder="transformer", cross_modal=True, modalities=("audio", "video"), tempo_range=(0.8, 1.2)
    )
    clone = ModelConfig.from_json(config.to_json())
    assert clone == config and isinstance(clone.tempo_range, tuple)
    config.save(tmp_path / "c.json")
    assert ModelConfig.load(tmp_path / "c.json") == config
    assert json.loads(config.to_json())["encoder"] == "transformer"
    mean = config.replace(pooling="mean")
    assert ModelConfig.from_json(mean.to_json()) == mean
    statistics = config.replace(input_statistics=["mean", "std"], l2=1e-4)
    assert ModelConfig.from_json(statistics.to_json()) == statistics and statistics.input_statistics == ("mean", "std")
    old = json.loads(config.to_json())
    del old["pooling"]  # written before the field existed
    assert ModelConfig.from_json(json.dumps(old)) == config
    with pytest.raises(ValueError, match="unknown ModelConfig fields: colour"):
        ModelConfig.from_json(json.dumps({"colour": "red"}))
    for bad in (
        dict(encoder="gru"),
        dict(modalities=("text",)),
        dict(loss="hinge"),
        dict(imbalance="oversample"),
        dict(pooling="max"),
        dict(input_statistics=("median",)),
        dict(modalities=("video",), input_statistics=("mean",)),
        dict(time_masks=-1),
        dict(time_mask_fraction=1.5),
        dict(mixup_alpha=-0.1),
        dict(utterance_noise=-1.0),
    ):
        with pytest.raises(ValueError):
            ModelConfig(**bad)
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        ModelConfig.load(tmp_path / "nothere.json")


def test_the_utterance_input_is_off_by_default_and_when_on_feeds_the_classifier():
    config = ModelConfig(**TINY, modalities=("audio",))
    assert config.input_groups == ("audio",)
    assert {t.name.split(":")[0] for t in build_model(config).inputs} == {"audio", "audio_mask"}
    on = config.replace(utterance_features="eGeMAPSv02", utterance_dim=3, utterance_units=4, utterance_l2=1e-3)
    assert on.input_groups == ("audio", "utterance") and ModelConfig.from_json(on.to_json()) == on
    model = build_model(on)
    assert model.get_layer("utterance_dense").kernel.shape == (3, 4) and model.name.endswith("_utterance")
    assert len(model.losses) == 1  # the utterance Dense kernel's L2 penalty (config.l2 is 0)
    inputs = random_clips(2, seed=1, audio_dim=5, video_dim=4).make_batch([0, 1], ("audio",))
    vectors = np.array([[0.5, -1.0, 2.0], [0.5, -1.0, 2.0]], np.float32)
    first = _run(model, {**inputs, "utterance": vectors})
    second = _run(model, {**inputs, "utterance": -vectors})
    assert np.allclose(first.sum(axis=1), 1.0) and not np.allclose(first, second)
    with pytest.raises(ValueError, match="utterance_dim is 0: set it to the width"):
        build_model(config.replace(utterance_features="eGeMAPSv02"))
    with pytest.raises(ValueError, match="the model has no audio input"):
        ModelConfig(modalities=("video",), utterance_features="eGeMAPSv02")


def test_noise_on_the_utterance_vector_acts_in_training_only():
    config = ModelConfig(**TINY, modalities=("audio",), utterance_features="ComParE_2016", utterance_dim=3)
    noisy = build_model(config.replace(utterance_noise=0.5))
    plain = build_model(config)
    assert "utterance_noise" in [layer.name for layer in noisy.layers]
    assert "utterance_noise" not in [layer.name for layer in plain.layers]
    plain.set_weights(noisy.get_weights())
    inputs = random_clips(2, seed=1, audio_dim=5, video_dim=4).make_batch([0, 1], ("audio",))
    inputs["utterance"] = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -2.0]], np.float32)
    np.testing.assert_allclose(_run(noisy, inputs), _run(plain, inputs), atol=1e-6)
    layer = noisy.get_layer("utterance_noise")
    vector = keras.ops.convert_to_tensor(np.zeros((1000, 3), np.float32))
    assert float(keras.ops.std(layer(vector, training=True))) == pytest.approx(0.5, rel=0.1)


def test_every_ablation_variant_gets_a_config_and_video_variants_skip_without_video():
    base = ModelConfig(**TINY)
    rows = ablation_variants(base)
    assert [(a, v) for a, v, _, _ in rows] == [(a, v) for a in ABLATIONS for v in ABLATIONS[a]]
    assert all(config is not None and reason == "" for _, _, config, reason in rows)
    configs = {(a, v): config for a, v, config, _ in rows}
    assert configs["pooling", "mean"] == base.replace(pooling="mean")
    assert configs["pooling", "attention"] == base
    audio_only = {
        (a, v): reason
        for a, v, config, reason in ablation_variants(
            base.replace(modalities=("audio",)), ["pooling", "modalities"], False
        )
    }
    assert audio_only == {
        ("pooling", "attention"): "",
        ("pooling", "mean"): "",
        ("modalities", "audio"): "",
        ("modalities", "video"): "the corpus has no face video",
        ("modalities", "fusion"): "the corpus has no face video",
    }


def test_wide_utterance_scores_are_added_to_the_deep_scores_before_the_softmax():
    config = ModelConfig(**TINY, modalities=("audio",), utterance_features="eGeMAPSv02", utterance_dim=3)
    wide = config.replace(utterance_logits=True, utterance_l2=1e-3)
    model = build_model(wide)
    assert model.get_layer("utterance_scores").kernel.shape == (3, wide.n_classes) and model.name.endswith("_wide")
    assert len(model.losses) == 2  # L2 on the utterance Dense kernel and on the linear scores' kernel
    inputs = {
        **random_clips(2, seed=1, audio_dim=5, video_dim=4).make_batch([0, 1], ("audio",)),
        "utterance": np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -2.0]], np.float32),
    }
    parts = keras.Model(model.inputs, [model.get_layer(n).output for n in ("deep_scores", "utterance_scores")])
    deep, linear = (np.asarray(p) for p in parts(inputs, training=False))
    scores = deep + linear
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    assert np.allclose(_run(model, inputs), expected / expected.sum(axis=1, keepdims=True), atol=1e-6)
    assert not np.allclose(linear, 0) and "utterance_scores" not in {layer.name for layer in build_model(config).layers}
    with pytest.raises(ValueError, match="utterance_logits needs the utterance input"):
        ModelConfig(utterance_logits=True)
