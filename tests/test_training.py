"""Training: exact resume after SIGKILL, schedule on validation loss, class weights, bad data, CPU setup,
progress lines."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.logs import hide_progress, show_progress
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.losses import LOSSES, build_loss, class_frequency_weights
from emotion_lib.sequences.data import FeatureValueError, random_clips
from emotion_lib.training.hardware import configure_hardware
from emotion_lib.training.trainer import CHECKPOINT, _update_schedule, same_model_config, train

TINY = dict(
    audio_dim=5,
    video_dim=4,
    conv_filters=6,
    rnn_units=4,
    video_rnn_units=4,
    attention_units=4,
    dense_units=8,
    batch_size=8,
)

SCRIPT = r'''
import json, sys, time
from pathlib import Path
import numpy as np
import emotion_lib
import keras
from emotion_lib.models.config import ModelConfig
from emotion_lib.sequences.data import random_clips
from emotion_lib.training.trainer import train

out, pause_epoch = Path(sys.argv[1]), int(sys.argv[2])

class Pause(keras.callbacks.Callback):
    """Stand still in the middle of epoch `pause_epoch` so the test can SIGKILL the process there."""
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == pause_epoch and batch == 1:
            (out / "paused").write_text("x")
            time.sleep(600)

config = ModelConfig(**json.loads(sys.argv[3]))
result = train(config, random_clips(24, seed=1, audio_dim=5, video_dim=4, audio_frames=(20, 50)),
               random_clips(8, seed=2, audio_dim=5, video_dim=4, audio_frames=(20, 50)), out,
               callbacks=[Pause()], tensorboard_dir=out / "tb")
np.savez(out / "final.npz", *[np.asarray(w) for w in result.model.weights])
(out / "final.json").write_text(json.dumps({"history": result.history, "best_epoch": result.best_epoch,
                                            "class_weights": result.class_weights, "hardware": result.hardware}))
'''


def _start(script: Path, out: Path, pause_epoch: int, config: dict) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(pause_epoch), json.dumps(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()[-3000:]


@pytest.mark.slow
def test_training_killed_midway_resumes_and_ends_like_an_uninterrupted_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    # Transformer encoder: the same checkpoint machinery, a quicker graph to trace than the BiLSTMs
    config = {
        **TINY,
        "epochs": 4,
        "lr_patience": 1,
        "patience": 10,
        "modality_dropout": 0.3,
        "encoder": "transformer",
        "transformer_ff": 8,
    }
    reference = _start(script, tmp_path / "reference", -1, config)
    interrupted = _start(script, tmp_path / "interrupted", 2, config)
    marker = tmp_path / "interrupted" / "paused"
    deadline = time.time() + 600
    while not marker.exists():
        assert interrupted.poll() is None, interrupted.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "training never reached the pause"
        time.sleep(0.5)
    interrupted.send_signal(signal.SIGKILL)  # in the middle of the third epoch
    interrupted.wait()
    with np.load(tmp_path / "interrupted" / CHECKPOINT) as checkpoint:
        assert json.loads(checkpoint["state"].tobytes())["epoch"] == 1  # epochs 0 and 1 were saved
    _finish(_start(script, tmp_path / "interrupted", -1, config))
    _finish(reference)

    resumed, uninterrupted = (
        json.loads((tmp_path / d / "final.json").read_text()) for d in ("interrupted", "reference")
    )
    assert resumed == uninterrupted | {"history": resumed["history"]}
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
        assert resumed["history"][key] == uninterrupted["history"][key], key
    assert len(resumed["history"]["val_loss"]) == 4
    with np.load(tmp_path / "interrupted" / "final.npz") as a, np.load(tmp_path / "reference" / "final.npz") as b:
        assert len(a.files) == len(b.files) > 10
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])
    train_labels = random_clips(24, seed=1, audio_dim=5, video_dim=4).labels
    np.testing.assert_allclose(resumed["class_weights"], class_frequency_weights(train_labels, 6), rtol=1e-6)
    assert resumed["hardware"].startswith("CPU")
    assert any((tmp_path / "reference" / "tb").rglob("events.out.tfevents*"))


def test_a_checkpoint_from_before_a_new_option_still_matches_its_configuration():
    config = ModelConfig(epochs=5)
    stored = json.loads(config.to_json())
    assert same_model_config({**stored, "epochs": 9}, config)  # more epochs asked for: the same run, continued
    older = {name: value for name, value in stored.items() if name != "dropout"}  # written before "dropout" existed
    assert same_model_config(older, config)  # the missing field takes its default, as the model did then
    assert not same_model_config(older, config.replace(dropout=0.5))  # ... unless the run now asks for another value
    assert not same_model_config({**stored, "rnn_units": 8}, config)
    assert not same_model_config({**stored, "retired_option": 1}, config)


def test_schedule_reduces_lr_then_stops_on_validation_loss():
    config = ModelConfig(patience=3, lr_patience=2, lr_factor=0.5, min_lr=0.3, learning_rate=1.0)
    state = {"best_loss": np.inf, "best_epoch": -1, "wait": 0, "lr_wait": 0, "lr": 1.0, "stopped_early": False}
    for epoch, loss in enumerate([1.0, 0.8, 0.9, 0.85]):
        _update_schedule(state, config, epoch, loss)
    assert (state["best_epoch"], state["lr"], state["stopped_early"]) == (1, 0.5, False)
    _update_schedule(state, config, 4, 0.81)
    assert state["stopped_early"] and state["lr"] == 0.5
    _update_schedule(state, config, 5, 0.9)
    assert state["lr"] == 0.3  # never below min_lr


def test_bad_data_and_settings_are_rejected_before_training(tmp_path):
    config = ModelConfig(**TINY, epochs=1)
    good = random_clips(6, seed=0, audio_dim=5, video_dim=4)
    poisoned = random_clips(6, seed=0, audio_dim=5, video_dim=4)
    poisoned.audio[3][5, 2] = np.inf  # changed after construction: train() checks again
    with pytest.raises(FeatureValueError, match=f"clip {poisoned.names[3]}: audio"):
        train(config, poisoned, good, tmp_path)
    wide = random_clips(6, seed=0, audio_dim=7, video_dim=4)
    with pytest.raises(ValueError, match="training audio features have 7 columns; ModelConfig.audio_dim is 5"):
        train(config, wide, good, tmp_path)
    with pytest.raises(ValueError, match="needs loss='focal'"):
        build_loss(ModelConfig(loss="crossentropy", imbalance="focal_alpha"), np.ones(6))
    assert not (tmp_path / CHECKPOINT).exists()


def test_a_registered_loss_trains_through_the_normal_api(tmp_path, monkeypatch):
    import keras

    built = []

    def squared_error(config: ModelConfig, class_weights: np.ndarray) -> keras.losses.Loss:
        built.append(class_weights)
        return keras.losses.MeanSquaredError()

    monkeypatch.setitem(LOSSES, "squared_error", squared_error)
    config = ModelConfig(**TINY, epochs=1, loss="squared_error", imbalance="none", augment=False)
    data = random_clips(8, seed=0, audio_dim=5, video_dim=4)
    result = train(config, data, data, tmp_path, tensorboard_dir=tmp_path / "tb")
    assert len(built) == 1 and np.allclose(built[0], class_frequency_weights(data.labels, config.n_classes))
    assert isinstance(result.model.loss, keras.losses.MeanSquaredError) and np.isfinite(result.history["loss"]).all()


def test_cpu_setup_is_float32_with_the_configured_batch():
    hardware = configure_hardware(ModelConfig(batch_size=24))
    assert (hardware.gpus, hardware.batch_size, hardware.mixed_precision) == (0, 24, False)
    assert "CPU" in hardware.describe()


def test_train_prints_one_line_per_epoch_when_asked_and_progress_changes_no_number(tmp_path, capsys):
    config = ModelConfig(**TINY, epochs=2, patience=5)
    data = random_clips(12, seed=0, audio_dim=5, video_dim=4)
    show_progress()
    try:
        quiet = train(config, data, data, tmp_path / "quiet", tensorboard_dir=tmp_path / "tb", progress=False)
        assert "epoch" not in capsys.readouterr().out
        shown = train(config, data, data, tmp_path / "shown", tensorboard_dir=tmp_path / "tb")
    finally:
        hide_progress()
    lines = capsys.readouterr().out.splitlines()
    pattern = r"\d\d:\d\d:\d\d epoch {}/2: loss [\d.]+, val_loss [\d.]+, val_accuracy [\d.]+, lr [\d.e-]+, [\d.]+ s"
    assert len(lines) == 2, lines
    for epoch, line in enumerate(lines, start=1):
        assert re.match(pattern.format(epoch), line), line
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
        assert shown.history[key] == quiet.history[key]
    for a, b in zip(shown.model.weights, quiet.model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_model_with_an_utterance_input_trains_and_predicts_from_the_clips_vectors(tmp_path):
    from emotion_lib.sequences.data import SequenceData
    from emotion_lib.training.trainer import predict_data

    clips = random_clips(12, seed=0, audio_dim=5, video_dim=4, no_video_every=1)
    vectors = np.eye(6, dtype=np.float32)[clips.labels] * 3.0
    data = SequenceData(clips.audio, clips.labels, clips.names, utterance=vectors)
    config = ModelConfig(**TINY, modalities=("audio",), epochs=1, utterance_features="test", utterance_dim=6)
    result = train(config, data, data, tmp_path / "run", tensorboard_dir=tmp_path / "tb", progress=False)
    probabilities = predict_data(result.model, data)
    assert probabilities.shape == (12, 6) and np.isfinite(result.history["loss"]).all()
    moved = SequenceData(clips.audio, clips.labels, clips.names, utterance=np.roll(vectors, 1, axis=1))
    assert not np.allclose(predict_data(result.model, moved), probabilities)  # the vectors reach the model
    with pytest.raises(ValueError, match=r"training utterance vectors \(test\) have 0 columns"):
        train(config, clips, data, tmp_path / "other")
    assert same_model_config(
        {k: v for k, v in json.loads(ModelConfig().to_json()).items() if "utterance" not in k}, ModelConfig()
    )


def test_masks_mixup_and_utterance_noise_change_training_and_repeat_exactly(tmp_path):
    from emotion_lib.sequences.data import SequenceData

    clips = random_clips(12, seed=0, audio_dim=5, video_dim=4, no_video_every=1)
    data = SequenceData(clips.audio, clips.labels, clips.names, utterance=np.eye(6, dtype=np.float32)[clips.labels])
    plain = ModelConfig(**TINY, modalities=("audio",), epochs=1, utterance_features="test", utterance_dim=6)
    regularised = plain.replace(
        time_masks=2, feature_masks=1, feature_mask_width=2, mixup_alpha=0.4, utterance_noise=0.5
    )
    losses = {
        run: train(config, data, data, tmp_path / run, progress=False).history["loss"]
        for run, config in (("plain", plain), ("regularised", regularised), ("again", regularised))
    }
    assert np.isfinite(losses["regularised"]).all() and losses["regularised"] != losses["plain"]
    assert losses["again"] == losses["regularised"]


def test_a_refitted_bundle_model_replays_the_early_stopped_schedule_on_training_and_validation_clips(tmp_path):
    from emotion_lib.experiments.training_run import _refit
    from emotion_lib.sequences.data import SequenceData
    from emotion_lib.training.trainer import predict_data, train_on_schedule

    clips = random_clips(16, seed=2, audio_dim=5, video_dim=4)
    train_side, validation_side = clips.subset(range(10)), clips.subset(range(10, 16))
    config = ModelConfig(**TINY, modalities=("audio",), epochs=2, refit=True)
    result = train(config, train_side, validation_side, tmp_path / "run", progress=False)
    metadata = {}
    refitted = _refit(result, train_side, validation_side, metadata)
    schedule = [float(lr) for lr in result.history["lr"][: result.best_epoch + 1]]
    assert metadata["refit"] == {"epochs": len(schedule), "train_examples": 16, "validation_ua_is": "early-stopped"}
    expected = train_on_schedule(config, SequenceData.concatenate(train_side, validation_side), schedule)
    np.testing.assert_allclose(predict_data(refitted.model, clips), predict_data(expected, clips), atol=1e-6)
    assert not np.allclose(predict_data(refitted.model, clips), predict_data(result.model, clips))
    assert refitted.best_epoch == result.best_epoch and refitted.history == result.history
