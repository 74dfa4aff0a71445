"""Training from the command line: ``python scripts/train_branched_attention.py`` (= ``python -m emotion_lib
train`` = ``train-branched-attention``).

Two ways in, one code path: ``--corpus`` trains the branched attention model on any corpus of
:data:`emotion_lib.data.corpora.CORPORA` (speaker-independent train / validation / test actors from the committed
splits; early stopping on the validation actors), ``--recipe`` trains one of the shipped models of
:data:`emotion_lib.experiments.pretrained.RECIPES`. Either way the result is a model bundle (``model_best.keras``,
configuration, normalisers, an int8 TFLite export, manifest with checksums) in ``--output-dir``. Checkpoints go to
a hidden folder beside it (``.<name>.training/``), so a run killed and started again continues from its last epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from emotion_lib.experiments.common import Context
from emotion_lib.experiments.pretrained import (
    CANDIDATE_RECIPES,
    RECIPES,
    TRAINED_MODEL_FILE,
    default_output,
    recipe,
    recipe_config,
    recipe_data,
    recipe_metadata,
    validation_ua,
)
from emotion_lib.experiments.pretrained_heads import head_model
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.models.config import ModelConfig
from emotion_lib.options import positive_int
from emotion_lib.paths import CACHE_DIR, PRETRAINED_DIR, SYNTHETIC_DIR, shared_data_dir
from emotion_lib.sequences.data import SequenceData
from emotion_lib.training.bundle import save_bundle
from emotion_lib.training.export import export_tflite_models
from emotion_lib.training.trainer import TrainResult, train, train_on_schedule

LOG = logging.getLogger(__name__)

DEFAULT_OUTPUT = PRETRAINED_DIR / "attention_focal_loss"
"""Where ``--corpus`` training writes its bundle unless ``--output-dir`` says otherwise (user output, not committed)."""


def checkpoint_dir_for(output_dir: Path) -> Path:
    """The hidden checkpoint folder beside a bundle folder: ``<parent>/.<name>.training``."""
    output_dir = Path(output_dir)
    return output_dir.parent / f".{output_dir.name}.training"


def write_bundle(
    result: TrainResult,
    train_data: SequenceData,
    normalisers: dict,
    extraction: ExtractionConfig,
    output_dir: Path,
    metadata: dict,
) -> Path:
    """Save a trained model as a bundle with an int8 TFLite export calibrated on training windows."""
    exports = export_tflite_models(result.model, result.config, train_data, modes=("int8",))
    return save_bundle(
        output_dir, result.model, result.config, normalisers, extraction, exports, metadata, TRAINED_MODEL_FILE
    )


def train_recipe(
    name: str,
    ctx: Context | None = None,
    output_dir: Path | str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    checkpoint_dir: Path | str | None = None,
) -> Path:
    """Train the shipped model ``name`` of :data:`RECIPES` and write its bundle; return the bundle folder.

    A recipe with a fixed ``head`` (``face``, ``av``) trains nothing: its bundle holds the head's Keras model (for
    ``av`` fused with the shipped voice model; no TFLite export), and its metadata the head's UA on the CK+
    sequences its choices were made on (:mod:`emotion_lib.experiments.pretrained_heads`).

    Args:
        name: a key of :data:`RECIPES` (``voice``, ``face``, ``av``, ``av-branched``) or of
            :data:`~emotion_lib.experiments.pretrained.CANDIDATE_RECIPES` (``voice-utterance``).
        ctx: where the real data and the feature cache are (default: ``../shared/data``, ``EMOTION_CACHE``);
            ``ctx.quick`` trains on a handful of clips (a smoke run, not a model to ship).
        output_dir: the bundle folder (default ``PRETRAINED_DIR / name``).
        epochs, seed: override the recipe's.
        checkpoint_dir: where checkpoints go (default: beside the bundle, see :func:`checkpoint_dir_for`).
    """
    chosen = recipe(name)
    ctx = ctx or Context()
    output_dir = Path(output_dir) if output_dir else default_output(name)
    if chosen.head is not None:  # a fixed head: nothing to train, no TFLite export (a mean and a 7x6 map)
        model, config, normalisers, metadata = head_model(name, chosen, ctx)
        path = save_bundle(
            output_dir, model, config, normalisers, chosen.extraction, metadata=metadata, model_file=TRAINED_MODEL_FILE
        )
        LOG.info("bundle written to %s (CK+ UA %.3f, nothing trained)", path, metadata["selection_ua_ckplus"])
        return path
    data = recipe_data(ctx, chosen)
    config = recipe_config(chosen, data, epochs, seed)
    LOG.info("recipe %s: %d training and %d validation examples", name, len(data.train), len(data.validation))
    result = _train(config, data.train, data.validation, Path(checkpoint_dir or checkpoint_dir_for(output_dir)))
    metadata = recipe_metadata(name, chosen, data, result)
    if config.refit:
        result = _refit(result, data.train, data.validation, metadata)
    path = write_bundle(result, data.train, data.normalisers, chosen.extraction, output_dir, metadata)
    LOG.info("bundle written to %s (validation UA %.3f)", path, metadata["validation_ua"])
    return path


def _refit(result: TrainResult, train_data: SequenceData, val_data: SequenceData, metadata: dict) -> TrainResult:
    """``config.refit``: the early-stopped run's epochs and learning rates replayed from scratch on the training and
    validation clips together; that model is the bundle's. The normalisers stay the training clips', and the
    metadata's ``validation_ua`` the early-stopped model's (the refitted one has trained on those clips)."""
    schedule = result.refit_schedule
    both = SequenceData.concatenate(train_data, val_data)
    LOG.info("refit: %d epochs on %d training + validation examples", len(schedule), len(both))
    metadata["refit"] = {"epochs": len(schedule), "train_examples": len(both), "validation_ua_is": "early-stopped"}
    return dataclasses.replace(result, model=train_on_schedule(result.config, both, schedule))


def _train(config: ModelConfig, train_data: SequenceData, val_data: SequenceData, checkpoints: Path) -> TrainResult:
    """Resumable training with its checkpoints and TensorBoard logs in ``checkpoints``."""
    return train(config, train_data, val_data, checkpoints, resume=True, tensorboard_dir=checkpoints / "tensorboard")


def train_corpus(
    corpus: str,
    data_dir: Path | str,
    config: ModelConfig,
    output_dir: Path | str = DEFAULT_OUTPUT,
    cache_dir: Path | str = CACHE_DIR,
    checkpoint_dir: Path | str | None = None,
    stream: bool = False,
) -> Path:
    """Train ``config`` on a corpus (committed speaker-independent splits) and write the bundle to ``output_dir``.

    Features are extracted into the cache first when missing (eGeMAPSv02 LLDs; dlib face embeddings at 5 frames/s
    when ``config`` has the video branch). The bundle's metadata holds the test actors' UA (a synthetic corpus'
    numbers are not emotion-recognition accuracy). ``stream`` reads each batch's clips from the cache instead of
    holding every clip's features (the same model; memory bounded by a few batches).
    """
    from emotion_lib.sequences.corpus import load_corpus_sequences

    extraction = ExtractionConfig(video_backend="dlib" if "video" in config.modalities else None)
    clips, splits, states = load_corpus_sequences(
        corpus,
        str(data_dir),
        seed=config.seed,
        extraction=extraction,
        cache_dir=cache_dir,
        extract_missing=True,
        stream=stream,
    )
    missing = [name for name in ("train", "validation") if name not in splits]
    if missing:
        raise ValueError(f"{corpus} in {data_dir}: no {' or '.join(missing)} actors with features")
    train_data, val_data = splits["train"], splits["validation"]
    config = config.replace(audio_dim=train_data.audio_dim, video_dim=train_data.video_dim or config.video_dim)
    output_dir = Path(output_dir)
    result = _train(config, train_data, val_data, Path(checkpoint_dir or checkpoint_dir_for(output_dir)))
    metadata = {
        "corpus": corpus,
        "data_dir": str(data_dir),
        "actors": clips[["actor", "split"]].drop_duplicates().astype(str).to_dict("records"),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "validation_ua": validation_ua(result, splits["validation"]),
    }
    if "test" in splits:
        metadata["test_ua"] = validation_ua(result, splits["test"])
    path = write_bundle(result, splits["train"], states, extraction, output_dir, metadata)
    LOG.info("bundle written to %s: %s", path, {k: metadata[k] for k in ("validation_ua", "epochs_run")})
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the training command."""
    from emotion_lib.data.corpora import CORPORA
    from emotion_lib.models.losses import LOSSES

    parser.add_argument("--corpus", default=None, choices=sorted(CORPORA), help="corpus to train on (synthetic)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the corpus folder (default: data/synthetic); with --recipe, the folder of the real corpora "
        "(default: ../shared/data)",
    )
    parser.add_argument(
        "--modalities", nargs="+", choices=["audio", "video"], default=None, help="branches (audio video)"
    )
    parser.add_argument("--encoder", choices=["bilstm", "transformer"], default=None, help="sequence encoder (bilstm)")
    parser.add_argument("--loss", choices=sorted(LOSSES), default=None, help="training loss (focal)")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="maximum epochs (default 30; a recipe: its own)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of splits, initialisation and batches (0)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help=f"bundle folder (default {DEFAULT_OUTPUT.relative_to(PRETRAINED_DIR.parent)}/; "
        "a recipe: models/<recipe>/)",
    )
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="feature cache (EMOTION_CACHE)")
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES | CANDIDATE_RECIPES),
        default=None,
        help="train a shipped model (or a candidate) instead",
    )
    parser.add_argument("--quick", action="store_true", help="with --recipe: a handful of clips (smoke run)")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="read each batch's clips from the feature cache instead of holding the corpus's features in memory "
        "(the same model; for corpora whose features do not fit in memory)",
    )


def run(args: argparse.Namespace) -> int:
    """Train the branched attention model (audio Conv1D -> BiLSTM -> attention, video BiLSTM -> attention,
    fusion) and write a model bundle: model_best.keras, config.json, normalisers.json, model_int8.tflite and
    manifest.json with checksums. Validation actors (early stopping) and test actors are speaker-independent.
    A killed run started again with the same options resumes from its last finished epoch. --recipe trains
    one of the shipped real-data models (the choices of --recipe, into models/<recipe>/) from ../shared/data."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model_options = {"--corpus": args.corpus, "--modalities": args.modalities, "--encoder": args.encoder}
    model_options["--loss"] = args.loss
    given = [name for name, value in model_options.items() if value is not None]
    if args.recipe and given:
        raise ValueError(f"--recipe sets the data and the model: {', '.join(given)} cannot be combined with it")
    if args.quick and not args.recipe:
        raise ValueError("--quick applies to --recipe only (for a small corpus run, give a small --data-dir)")
    if args.stream and args.recipe:
        raise ValueError("--stream applies to --corpus training only (a recipe loads its own data)")
    if args.recipe:
        ctx = Context(data_dir=args.data_dir or shared_data_dir(), cache_dir=args.cache_dir, quick=args.quick)
        path = train_recipe(args.recipe, ctx, args.output_dir, args.epochs, args.seed)
    else:
        corpus = args.corpus or "synthetic"
        config = ModelConfig(
            modalities=tuple(args.modalities or ("audio", "video")),
            encoder=args.encoder or "bilstm",
            loss=args.loss or "focal",
            epochs=30 if args.epochs is None else args.epochs,
            seed=args.seed or 0,
        )
        data_dir = args.data_dir or (SYNTHETIC_DIR if corpus == "synthetic" else shared_data_dir() / corpus)
        output_dir = args.output_dir or DEFAULT_OUTPUT
        path = train_corpus(corpus, data_dir, config, output_dir, args.cache_dir, stream=args.stream)
    print(f"model bundle written to {path}")
    return 0
