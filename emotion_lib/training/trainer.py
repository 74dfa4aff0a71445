"""Training with per-epoch checkpoints and exact resume, early stopping on validation actors, GPU switches.

Each epoch is one ``model.fit`` call on a tf.data pipeline whose order, augmentation and dropout draws
depend only on ``(seed, epoch)``. After every epoch the weights, optimizer state and the early-stopping /
learning-rate-schedule state are written atomically to ``<out_dir>/checkpoint.npz``; a run killed at any
point and started again with the same arguments continues from the last finished epoch and ends with the
same weights and metrics as an uninterrupted run (on the CPU, where TensorFlow ops are deterministic).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from emotion_lib.models.config import ModelConfig
from emotion_lib.models.fusion import build_model
from emotion_lib.models.losses import build_loss, class_frequency_weights
from emotion_lib.paths import REPORTS_DIR
from emotion_lib.sequences.augment import FeatureAugmenter
from emotion_lib.sequences.data import ClipBatches, bucket_batches
from emotion_lib.training.hardware import Hardware, configure_hardware
from emotion_lib.utils import atomic_write_bytes, set_seed

CHECKPOINT = "checkpoint.npz"
LOG = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be resumed (other configuration, other model, unreadable)."""


@dataclass
class TrainResult:
    """The trained model (best validation epoch restored), per-epoch history and where things were written."""

    model: keras.Model
    config: ModelConfig
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    out_dir: Path
    hardware: str
    class_weights: list[float] = field(default_factory=list)

    @property
    def refit_schedule(self) -> list[float]:
        """The learning rate of every epoch up to the best one: what a refit replays (:func:`train_on_schedule`)."""
        return [float(lr) for lr in self.history["lr"][: self.best_epoch + 1]]


def _seed_generators(model: keras.Model) -> list:
    found = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        found.extend(v for v in vars(layer).values() if isinstance(v, keras.random.SeedGenerator))
    return found


def _reseed(model: keras.Model, seed: int, epoch: int) -> None:
    """Set every dropout generator from ``(seed, epoch)`` so an epoch's random draws do not depend on history."""
    for i, generator in enumerate(_seed_generators(model)):
        value = int(np.random.default_rng([seed, epoch, i]).integers(1, 2**30))
        generator.state.assign(np.array([value, 0], dtype=generator.state.dtype))


def _check_data(data: ClipBatches, config: ModelConfig, role: str) -> None:
    if not len(data):
        raise ValueError(f"the {role} split is empty")
    data.validate()
    if "audio" in config.modalities and data.audio_dim != config.audio_dim:
        raise ValueError(
            f"{role} audio features have {data.audio_dim} columns; ModelConfig.audio_dim is {config.audio_dim}"
        )
    if "video" in config.modalities and data.video_dim not in (0, config.video_dim):
        raise ValueError(
            f"{role} video features have {data.video_dim} columns; ModelConfig.video_dim is {config.video_dim}"
        )
    if config.utterance_features and data.utterance_dim != config.utterance_dim:
        raise ValueError(
            f"{role} utterance vectors ({config.utterance_features}) have {data.utterance_dim} columns; "
            f"ModelConfig.utterance_dim is {config.utterance_dim}"
        )


def data_fingerprint(*datasets: ClipBatches) -> str:
    """A short hash of clip names, labels and array shapes, so a checkpoint is only resumed on the same data."""
    digest = hashlib.sha1()
    for data in datasets:
        for name, label, (audio, video) in zip(data.names, data.labels, data.shapes()):
            digest.update(f"{name}|{label}|{audio}|{video};".encode())
        if data.utterance is not None:
            digest.update(data.utterance.tobytes())
    return digest.hexdigest()[:16]


def predict_data(model: keras.Model, data: ClipBatches, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(n_clips, n_classes)`` for every clip of ``data``, in its order."""
    modalities = tuple(name for name in ("audio", "video", "utterance") if name in model.input)
    probs = np.zeros((len(data), data.n_classes), np.float32)
    for idx in bucket_batches(data.lengths(), batch_size):
        probs[idx] = np.asarray(model(data.make_batch(idx, modalities), training=False))
    return probs


def _save_checkpoint(path: Path, model: keras.Model, best: list[np.ndarray], state: dict) -> None:
    arrays = {f"w{i}": np.asarray(v) for i, v in enumerate(model.weights)}
    arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    arrays.update({f"b{i}": w for i, w in enumerate(best)})
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def same_model_config(stored: dict, config: ModelConfig) -> bool:
    """Whether a checkpoint's stored configuration is ``config``, the number of epochs aside.

    Fields added to :class:`ModelConfig` after the checkpoint was written take their defaults (every new option is
    off by default, so the model is the same), so a library upgrade does not strand a run half-way.
    """
    try:
        written = ModelConfig.from_json(json.dumps(stored))
    except (TypeError, ValueError):  # a field this version no longer knows
        return False
    return written.replace(epochs=0) == config.replace(epochs=0)


def _load_checkpoint(
    path: Path, model: keras.Model, config: ModelConfig, fingerprint: str
) -> tuple[list[np.ndarray], dict]:
    try:
        with np.load(path) as data:
            state = json.loads(data["state"].tobytes().decode())
            weights = [data[f"w{i}"] for i in range(len(model.weights))]
            optimizer = [data[f"o{i}"] for i in range(len(model.optimizer.variables))]
            best = [data[f"b{i}"] for i in range(len(model.weights)) if f"b{i}" in data]
    except (OSError, KeyError, ValueError) as error:
        raise CheckpointError(f"cannot resume from {path}: {error}") from error
    if not same_model_config(state["config"], config):
        raise CheckpointError(
            f"{path} was written with another ModelConfig; use a new out_dir, delete {path.parent} or resume=False"
        )
    if state["data"] != fingerprint:
        raise CheckpointError(
            f"{path} was written for other training/validation clips; use a new out_dir or resume=False"
        )
    for variable, value in zip(model.weights, weights):
        if tuple(variable.shape) != value.shape:
            raise CheckpointError(
                f"{path}: weight {variable.path} has shape {value.shape}, the model expects {tuple(variable.shape)}"
            )
        variable.assign(value)
    for variable, value in zip(model.optimizer.variables, optimizer):
        variable.assign(value)
    return best, state


def _fresh_model(config: ModelConfig, train_data: ClipBatches) -> tuple[keras.Model, Hardware, np.ndarray]:
    """Seeded, on the available hardware, compiled with the class weights of ``train_data``:
    ``(model, hardware, class weights)``, the start of every training."""
    set_seed(config.seed)
    hardware = configure_hardware(config)
    class_weights = class_frequency_weights(train_data.labels, config.n_classes)
    return _compiled_model(config, hardware, class_weights), hardware, class_weights


def _compiled_model(config: ModelConfig, hardware: Hardware, class_weights: np.ndarray) -> keras.Model:
    """``build_model(config)`` compiled with Adam and the configured loss, its optimizer state built."""
    with hardware.strategy.scope():
        model = build_model(config)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss=build_loss(config, class_weights),
            metrics=["accuracy"],
            jit_compile=False,
        )
        model.optimizer.build(model.trainable_variables)
    return model


def _initial_state(
    model: keras.Model, config: ModelConfig, fingerprint: str, checkpoint: Path, resume: bool
) -> tuple[list[np.ndarray], dict]:
    """``(best weights, training state)``: a fresh start, or what the checkpoint holds when resuming."""
    state = {
        "config": json.loads(config.to_json()),
        "data": fingerprint,
        "epoch": -1,
        "best_loss": math.inf,
        "best_epoch": -1,
        "wait": 0,
        "lr_wait": 0,
        "lr": config.learning_rate,
        "history": {},
        "stopped_early": False,
    }
    best = [np.asarray(v) for v in model.weights]
    if resume and checkpoint.exists():
        best, state = _load_checkpoint(checkpoint, model, config, fingerprint)
        LOG.info("resuming %s after epoch %d of %d", checkpoint, state["epoch"] + 1, config.epochs)
    return best, state


@dataclass
class _Epochs:
    """Runs one epoch at a time: one ``model.fit`` call whose data order, augmentation and dropout draws depend
    only on ``(seed, epoch)``."""

    model: keras.Model
    config: ModelConfig
    train_data: ClipBatches
    val_ds: tf.data.Dataset | None
    batch_size: int
    augment: FeatureAugmenter | None
    sample_weights: np.ndarray | None
    callbacks: list[keras.callbacks.Callback]
    verbose: int

    def run(self, epoch: int, lr: float) -> dict[str, float]:
        """Train epoch ``epoch`` at learning rate ``lr``; return its final metrics, ``lr`` and ``seconds``."""
        config = self.config
        _reseed(self.model, config.seed, epoch)
        self.model.optimizer.learning_rate.assign(lr)
        train_ds = self.train_data.dataset(
            self.batch_size,
            config.input_groups,
            seed=config.seed,
            epoch=epoch,
            augment=self.augment,
            class_weights=self.sample_weights,
            mixup_alpha=config.mixup_alpha,
        )
        n_batches = math.ceil(len(self.train_data) / self.batch_size)
        train_ds = train_ds.apply(tf.data.experimental.assert_cardinality(n_batches))
        started = time.perf_counter()
        logs = self.model.fit(
            train_ds,
            validation_data=self.val_ds,
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,
            callbacks=self.callbacks,
            verbose=self.verbose,
        ).history
        logs = {k: float(v[-1]) for k, v in logs.items()}
        if not all(math.isfinite(v) for v in logs.values()):
            raise FloatingPointError(
                f"epoch {epoch + 1}: non-finite training metrics {logs}; lower the learning rate or check the features"
            )
        logs.update(lr=float(lr), seconds=time.perf_counter() - started)
        return logs


def _epochs(
    model: keras.Model,
    config: ModelConfig,
    hardware: Hardware,
    train_data: ClipBatches,
    val_data: ClipBatches | None,
    class_weights: np.ndarray,
    callbacks: list[keras.callbacks.Callback],
    verbose: int,
) -> _Epochs:
    """The epoch runner: augmentation, sample weights (``imbalance='class_weight'``) and the validation set (none
    when ``val_data`` is ``None``)."""
    augment = config.feature_augmenter()
    sample_weights = class_weights if config.imbalance == "class_weight" else None
    val_ds = None
    if val_data is not None:
        val_ds = val_data.dataset(hardware.batch_size, config.input_groups).apply(
            tf.data.experimental.assert_cardinality(math.ceil(len(val_data) / hardware.batch_size))
        )
    return _Epochs(model, config, train_data, val_ds, hardware.batch_size, augment, sample_weights, callbacks, verbose)


def train(
    config: ModelConfig,
    train_data: ClipBatches,
    val_data: ClipBatches,
    out_dir: Path | str,
    resume: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    tensorboard_dir: Path | str | None = None,
    verbose: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Train ``build_model(config)``; early stopping and learning-rate reduction watch ``val_loss`` only.

    ``train_data`` and ``val_data`` come from actor-disjoint splits; class weights (or focal alpha) from the training
    labels. ``resume`` continues a checkpoint in ``out_dir``; TensorBoard logs go to ``tensorboard_dir`` (default
    ``reports/tensorboard/<out_dir name>``); ``callbacks`` see every epoch. ``progress`` logs one INFO line per epoch
    (shown by the CLI and by notebooks after :func:`emotion_lib.logs.show_progress`); ``verbose`` is Keras's own.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_data(train_data, config, "training")
    _check_data(val_data, config, "validation")
    model, hardware, class_weights = _fresh_model(config, train_data)
    fingerprint = data_fingerprint(train_data, val_data)
    checkpoint = out_dir / CHECKPOINT
    best, state = _initial_state(model, config, fingerprint, checkpoint, resume)
    board = keras.callbacks.TensorBoard(
        str(tensorboard_dir or REPORTS_DIR / "tensorboard" / out_dir.name), write_graph=False
    )
    epochs = _epochs(model, config, hardware, train_data, val_data, class_weights, [board, *callbacks], verbose)
    for epoch in range(state["epoch"] + 1, config.epochs):
        if state["stopped_early"]:
            break
        logs = epochs.run(epoch, state["lr"])
        for key, value in logs.items():
            state["history"].setdefault(key, []).append(value)
        _update_schedule(state, config, epoch, logs["val_loss"])
        if state["best_epoch"] == epoch:
            best = [np.asarray(v) for v in model.weights]
        state["epoch"] = epoch
        _save_checkpoint(checkpoint, model, best, state)
        if progress:
            _log_epoch(epoch, config.epochs, logs, state)
    if len(best) == len(model.weights):
        for variable, value in zip(model.weights, best):
            variable.assign(value)
    return TrainResult(
        model,
        config,
        state["history"],
        state["best_epoch"],
        state["epoch"] + 1,
        state["stopped_early"],
        out_dir,
        hardware.describe(),
        class_weights.tolist(),
    )


def train_on_schedule(config: ModelConfig, train_data: ClipBatches, learning_rates: Sequence[float]) -> keras.Model:
    """Train ``build_model(config)`` from scratch for ``len(learning_rates)`` epochs, epoch ``i`` at
    ``learning_rates[i]``, with no validation data and no early stopping; the last epoch's weights are kept.

    For a refit: an early-stopped training's epochs and learning-rate schedule (its ``history["lr"]`` up to its best
    epoch) replayed on more data, e.g. its training and validation clips together. Same seeds, augmentation and
    class weighting as :func:`train`.
    """
    _check_data(train_data, config, "training")
    if not learning_rates:
        raise ValueError("a schedule of at least one epoch is needed")
    model, hardware, class_weights = _fresh_model(config, train_data)
    epochs = _epochs(model, config, hardware, train_data, None, class_weights, [], 0)
    for epoch, lr in enumerate(learning_rates):
        epochs.run(epoch, float(lr))
    return model


def _log_epoch(epoch: int, epochs: int, logs: dict[str, float], state: dict) -> None:
    """One progress line for a finished epoch (and one more when early stopping ends the run)."""
    LOG.info(
        "epoch %d/%d: loss %.4f, val_loss %.4f, val_accuracy %.3f, lr %.2g, %.1f s%s",
        epoch + 1,
        epochs,
        logs["loss"],
        logs["val_loss"],
        logs.get("val_accuracy", float("nan")),
        logs["lr"],
        logs["seconds"],
        " (best so far)" if state["best_epoch"] == epoch else "",
    )
    if state["stopped_early"]:
        LOG.info("stopped early after epoch %d; best epoch %d restored", epoch + 1, state["best_epoch"] + 1)


def _update_schedule(state: dict, config: ModelConfig, epoch: int, val_loss: float) -> None:
    """Early stopping and reduce-on-plateau bookkeeping on the validation loss (mutates ``state``)."""
    if val_loss < state["best_loss"] - 1e-6:
        state.update(best_loss=val_loss, best_epoch=epoch, wait=0, lr_wait=0)
        return
    state["wait"] += 1
    state["lr_wait"] += 1
    if state["lr_wait"] >= config.lr_patience:
        state["lr"] = max(state["lr"] * config.lr_factor, config.min_lr)
        state["lr_wait"] = 0
    if state["wait"] >= config.patience:
        state["stopped_early"] = True


def samples_per_second(result: TrainResult, n_clips: int) -> float:
    """Median training throughput (clips per second, validation included) over the epochs run."""
    seconds = result.history.get("seconds", [])
    return float(n_clips / np.median(seconds)) if seconds else float("nan")
