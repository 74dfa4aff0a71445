"""End-to-end check of the audio-visual model on the real face videos: a small check, not a benchmark.

Only 50 real audio-visual clips exist here (44 RAVDESS actor-01 face videos, 6 CREMA-D actor-1001 FLVs), too
few to train the fusion model speaker-independently. It is trained on *unpaired* real data instead:

- voices: RAVDESS speech actors 02-18 (eGeMAPSv02 LLDs, 6 classes, audio only);
- faces: CK+ 48x48 crops, upscaled so the detector finds the face (``experiments.backend_features``), fer
  backend 128-d penultimate features per frame (5 classes, no neutral, video only), plus mirrored copies.

Training examples are faces alone (audio fully masked) and class-matched pseudo-pairs: each voice with a face
sequence of the same emotion from another corpus and person. Neutral voices have no CK+ face; they get a face of
any class, so a face carries no evidence for or against neutral. The model's modality dropout turns pairs into
voices alone (video missing). Early stopping watches held-out RAVDESS actors (the committed validation fold
among 02-18) and held-out CK+ subjects, built the same way plus voices alone. Normalisation is global, with
training statistics only.

The 50 clips then go through the path users take: :func:`~emotion_lib.features.store.extract_features` (eGeMAPS
LLDs and fer features at 5 frames/s from the files themselves), normalisation, padding and masks, and prediction
with both modalities, audio only (video masked) and video only (audio masked). Neither RAVDESS actor 01 nor
CREMA-D actor 1001 is in training and the faces come from another corpus: speaker-independent, and cross-corpus
for the faces. Run ``python -m emotion_lib.end_to_end`` (``--quick``: a handful of clips, 1 epoch).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.clips import RAVDESS_ACTORS, ravdess_speech_clips
from emotion_lib.data.corpora import load_ckplus48, load_corpus, load_crema_d
from emotion_lib.data.splits import folds_for
from emotion_lib.evaluation.metrics import aggregate, classification_metrics, wilson_interval
from emotion_lib.evaluation.records import METRICS_PATH, ExperimentRecord, load_metrics, record_experiment
from emotion_lib.experiments.common import Context, cached_features, neural_seeds
from emotion_lib.features.faces.fer import FerBackend
from emotion_lib.features.images import ckplus_features
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ClipFeatures, ExtractionConfig
from emotion_lib.labels import EMOTIONS, emotion_index
from emotion_lib.paths import shared_data_dir
from emotion_lib.plots.evaluation import plot_confusion_grid
from emotion_lib.sequences.pairing import PartialSequenceData, Unimodal, assemble, split_frames

LOG = logging.getLogger(__name__)


GROUP = "end_to_end"
COMMAND = "python -m emotion_lib.end_to_end"
TRAIN_ACTORS = RAVDESS_ACTORS[1:]
"""RAVDESS speech actors whose voices train the model (02-18); actor 01 is the face-video test actor."""
VALIDATION_FOLD = 1
"""Fold of the committed RAVDESS folds (02, 11 among 02-18) and of the seeded CK+ subject folds used for
early stopping."""
VOICE_EXTRACTION = ExtractionConfig(video_backend=None)
"""eGeMAPSv02 LLDs of the audio-only training voices (the shared cache of the other experiments)."""
AV_EXTRACTION = ExtractionConfig(video_backend="fer", backend_options={"output": "features"})
"""eGeMAPSv02 LLDs + fer 128-d face features at 5 frames/s for the audio-visual test clips."""
INPUT_MODES = {"audio_video": ("audio", "video"), "audio": ("audio",), "video": ("video",)}
"""What the model is given: both modalities, audio only (video masked), video only (audio masked)."""
TEST_SETS = {"ravdess-faces": "ravdess_actor01", "crema-d": "crema_d_1001"}
"""Corpus of the audio-visual clips -> name of its test set in the metrics file."""


@dataclass
class TrainingData:
    """Training and validation examples, the normalisers fitted on training data, and who is on which side."""

    train: PartialSequenceData
    validation: PartialSequenceData
    audio_normaliser: Normaliser
    video_normaliser: Normaliser
    sides: pd.DataFrame  # corpus, actor, side (train / validation)


def training_data(ctx: Context, seed: int = 0) -> TrainingData:
    """Unpaired real training data: RAVDESS voices of actors 02-18 and CK+ faces, split by speaker/subject."""
    voice_features, voices = cached_features(
        ravdess_speech_clips(ctx.data_dir, TRAIN_ACTORS, subset=2 if ctx.quick else 0), VOICE_EXTRACTION, ctx.cache_dir
    )
    faces, _ = load_ckplus48(Path(ctx.data_dir) / "ckplus48")
    if ctx.quick:
        faces = faces.groupby("emotion", group_keys=False).head(4).reset_index(drop=True)
    original, mirrored = ckplus_features(faces, "fer_features", ctx.cache_dir, per_frame=True)
    lengths = [len(frames) for frames in faces["image_paths"]]
    face_frames, mirror_frames = split_frames(original, lengths), split_frames(mirrored, lengths)

    voice_folds = folds_for("ravdess", voices["actor"].unique().tolist())
    face_folds = folds_for("ckplus", faces["actor"].unique().tolist(), n_folds=5, seed=seed)
    voice_val = voices["actor"].isin(voice_folds.loc[voice_folds["fold"] == VALIDATION_FOLD, "actor"]).to_numpy()
    face_val = faces["actor"].isin(face_folds.loc[face_folds["fold"] == VALIDATION_FOLD, "actor"]).to_numpy()
    sides = pd.concat(
        [
            pd.DataFrame(
                {"corpus": table["corpus"], "actor": table["actor"], "side": np.where(val, "validation", "train")}
            )
            for table, val in ((voices, voice_val), (faces, face_val))
        ]
    ).drop_duplicates()

    train_voice = [voice_features[c].audio for c in voices.loc[~voice_val, "clip_id"]]
    audio_norm = Normaliser("global").fit(train_voice)
    train_faces = [face_frames[i] for i in np.flatnonzero(~face_val)] + [
        mirror_frames[i] for i in np.flatnonzero(~face_val)
    ]
    video_norm = Normaliser("global").fit([f for f, _ in train_faces], masks=[m for _, m in train_faces])

    def voice_side(chosen: np.ndarray) -> Unimodal:
        part = voices[chosen]
        return Unimodal(
            part["clip_id"].tolist(),
            [audio_norm.transform(voice_features[c].audio) for c in part["clip_id"]],
            np.array([emotion_index(e) for e in part["emotion"]]),
        )

    def face_side(chosen: np.ndarray, with_mirror: bool) -> Unimodal:
        index = np.flatnonzero(chosen)
        items = [(faces.at[i, "sequence_id"], face_frames[i], faces.at[i, "emotion"]) for i in index]
        if with_mirror:
            items += [(f"{faces.at[i, 'sequence_id']}:mirror", mirror_frames[i], faces.at[i, "emotion"]) for i in index]
        return Unimodal(
            [name for name, _, _ in items],
            [video_norm.transform(frames, mask=mask) for _, (frames, mask), _ in items],
            np.array([emotion_index(e) for _, _, e in items]),
            [mask for _, (_, mask), _ in items],
        )

    train = assemble(voice_side(~voice_val), face_side(~face_val, True), seed, voices_alone=False)
    validation = assemble(voice_side(voice_val), face_side(face_val, False), seed, voices_alone=True)
    return TrainingData(train, validation, audio_norm, video_norm, sides.reset_index(drop=True))


def load_av_clips(data_dir: Path | str, quick: bool = False) -> pd.DataFrame:
    """The real audio-visual clips: RAVDESS actor-01 face videos (corpus ``ravdess-faces``) and the CREMA-D
    FLVs of actor 1001, with CREMA-D's perceived labels (``perceived_*`` columns; ``emotion`` is the intended
    emotion of the file name). ``quick`` keeps one RAVDESS clip per class and two CREMA-D clips."""
    data_dir = Path(data_dir)
    ravdess, _ = load_corpus("ravdess", data_dir / "ravdess-faces")
    ravdess["corpus"] = "ravdess-faces"  # its own cache folder: clip ids are those of the audio-only RAVDESS
    crema, _ = load_crema_d(data_dir / "crema-d", perceived_labels=True)
    crema = crema[crema["video_path"].notna()]
    if quick:
        ravdess, crema = ravdess.groupby("emotion").head(1), crema.head(2)
    return pd.concat([ravdess, crema], ignore_index=True)


def clip_inputs(
    clips: pd.DataFrame, features: dict[str, ClipFeatures], audio_norm: Normaliser, video_norm: Normaliser, mode: str
) -> PartialSequenceData:
    """Normalised model inputs of the clips for one :data:`INPUT_MODES` entry (the other modality masked)."""
    given = INPUT_MODES[mode]
    audio, video, masks = [], [], []
    for clip_id in clips["clip_id"]:
        clip = features[clip_id]
        audio.append(audio_norm.transform(clip.audio))
        has_video = "video" in given and clip.video is not None
        video.append(video_norm.transform(clip.video, mask=clip.video_mask) if has_video else None)
        masks.append(clip.video_mask if has_video else None)
    labels = [emotion_index(e) for e in clips["emotion"]]
    return PartialSequenceData(
        audio,
        labels,
        clips["clip_id"].tolist(),
        video,
        masks,
        FerBackend.OUTPUTS[AV_EXTRACTION.backend_kwargs()["output"]],
        audio_present=np.full(len(clips), "audio" in given),
    )


def _command(ctx: Context) -> str:
    return (
        COMMAND
        + (" --quick" if ctx.quick else "")
        + (f" --seeds {' '.join(map(str, ctx.seeds))}" if tuple(ctx.seeds) != (0, 1, 2) else "")
    )


def run_end_to_end(ctx: Context) -> list[dict]:
    """Train on unpaired real voices and faces, predict the 50 real audio-visual clips three ways, record it.

    Returns one row per (test set, input mode) like the other experiments; the per-clip table (every mode's
    predictions) goes into the ``audio_video`` records' ``extra['clips']`` (see :func:`recorded_clips`), the
    confusion figure to ``05_end_to_end_confusion``. Runs with :func:`neural_seeds` of the context.
    """
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.plots.figures import save_figure
    from emotion_lib.training.trainer import predict_data, train

    ctx = dataclasses.replace(ctx, seeds=neural_seeds(ctx))
    started = time.perf_counter()
    features, clips = cached_features(load_av_clips(ctx.data_dir, ctx.quick), AV_EXTRACTION, ctx.cache_dir)
    clips["video_frames"] = [0 if features[c].video is None else len(features[c].video) for c in clips["clip_id"]]
    clips["face_fraction"] = [
        float(features[c].video_mask.mean()) if clips.at[i, "video_frames"] else 0.0
        for i, c in enumerate(clips["clip_id"])
    ]
    timings = {"test_extraction_s": time.perf_counter() - started}

    predictions: dict[str, list[np.ndarray]] = {mode: [] for mode in INPUT_MODES}
    training: list[dict] = []
    for seed in ctx.seeds:
        step = time.perf_counter()
        data = training_data(ctx, seed)
        timings[f"training_data_seed{seed}_s"] = time.perf_counter() - step
        assert_unseen(data.sides, clips)
        config = ModelConfig(
            modalities=("audio", "video"),
            audio_dim=data.train.audio_dim,
            video_dim=data.train.video_dim,
            epochs=1 if ctx.quick else 30,
            seed=seed,
        )
        step = time.perf_counter()
        with tempfile.TemporaryDirectory() as out_dir:
            result = train(
                config,
                data.train,
                data.validation,
                Path(out_dir) / "checkpoint",
                resume=False,
                tensorboard_dir=Path(out_dir) / "tensorboard",
            )
        timings[f"training_seed{seed}_s"] = time.perf_counter() - step
        training.append(
            {
                "seed": seed,
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch + 1,
                "train_examples": len(data.train),
                "validation_examples": len(data.validation),
                "validation": validation_metrics(result.model, data.validation),
            }
        )
        for mode in INPUT_MODES:
            inputs = clip_inputs(clips, features, data.audio_normaliser, data.video_normaliser, mode)
            predictions[mode].append(predict_data(result.model, inputs))
    timings["total_s"] = time.perf_counter() - started
    LOG.info("end-to-end run: %s", {k: round(v, 1) for k, v in timings.items()})
    table = clip_table(clips, predictions)
    rows = record_end_to_end(ctx, clips, table, predictions, training, timings)
    save_figure(confusion_figure(table, ctx.quick), "05_end_to_end_confusion")
    return rows


def assert_unseen(sides: pd.DataFrame, clips: pd.DataFrame) -> None:
    """Raise when a test clip's actor is among the training or validation speakers of its corpus."""
    seen = set(zip(sides["corpus"].map({"ravdess": "ravdess-faces"}).fillna(sides["corpus"]), sides["actor"]))
    leaking = sorted({(c, a) for c, a in zip(clips["corpus"], clips["actor"]) if (c, a) in seen})
    if leaking:
        raise RuntimeError(f"test actors also used in training or validation: {leaking}")


def validation_metrics(model, data: PartialSequenceData) -> dict[str, float]:
    """UA on the validation voices alone, faces alone and pairs (the kinds of example in ``data``)."""
    from emotion_lib.training.trainer import predict_data

    predicted = predict_data(model, data).argmax(axis=1)
    kinds = np.array([name.split(":", 1)[0] for name in data.names])
    names = np.asarray(EMOTIONS)
    return {
        f"{kind}_ua": classification_metrics(
            names[data.labels[kinds == kind]], names[predicted[kinds == kind]], EMOTIONS
        )["ua"]
        for kind in dict.fromkeys(kinds)
    }


def clip_table(clips: pd.DataFrame, predictions: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    """Per clip: true and perceived labels, face-found fraction, and per input mode the predicted class and its
    probability (mean over seeds)."""
    columns = ["clip_id", "corpus", "actor", "emotion", "video_frames", "face_fraction"] + [
        c for c in ("perceived_voice", "perceived_face", "perceived_audiovisual") if c in clips
    ]
    table = clips[columns].copy()
    for mode, runs in predictions.items():
        probabilities = np.mean(runs, axis=0)
        table[f"predicted_{mode}"] = np.asarray(EMOTIONS)[probabilities.argmax(axis=1)]
        table[f"confidence_{mode}"] = probabilities.max(axis=1).round(3)
    return table


def perceived_agreement(table: pd.DataFrame, mode: str) -> float | None:
    """Fraction of clips whose prediction equals CREMA-D's crowd vote on the audio-visual clip (ties left out)."""
    voted = table["perceived_audiovisual"].map(lambda vote: isinstance(vote, str)).to_numpy(dtype=bool)
    if not voted.any():
        return None
    votes = table["perceived_audiovisual"].to_numpy()[voted]
    return float(np.mean(table[f"predicted_{mode}"].to_numpy()[voted] == votes))


def record_end_to_end(
    ctx: Context,
    clips: pd.DataFrame,
    table: pd.DataFrame,
    predictions: dict[str, list[np.ndarray]],
    training: list[dict],
    timings: dict[str, float],
) -> list[dict]:
    """One metrics record per test set and input mode (mean over seeds; pooled: the :func:`clip_table`
    predictions from seed-averaged probabilities)."""
    names = np.asarray(EMOTIONS)
    rows = []
    for corpus, test_set in TEST_SETS.items():
        chosen = (clips["corpus"] == corpus).to_numpy()
        if not chosen.any():
            continue
        truth = clips.loc[chosen, "emotion"].to_numpy()
        actors = sorted(clips.loc[chosen, "actor"].unique())
        n = int(chosen.sum())
        labels_note = (
            "labels: the intended emotion of the file name (CREMA-D's crowd-perceived labels from "
            "summaryTable.csv are in the clip table)"
            if corpus == "crema-d"
            else "labels: the acted emotion of the file name"
        )
        for mode in INPUT_MODES:
            runs = [classification_metrics(truth, names[p[chosen].argmax(axis=1)], EMOTIONS) for p in predictions[mode]]
            pooled = classification_metrics(truth, table.loc[chosen, f"predicted_{mode}"].to_numpy(), EMOTIONS)
            given = " + ".join(INPUT_MODES[mode]) + (
                " (the other modality masked)" if len(INPUT_MODES[mode]) == 1 else ""
            )
            description = (
                ("SMOKE RUN, a handful of clips, 1 epoch: " if ctx.quick else "")
                + f"END-TO-END CHECK on n={n} real clips of one actor ({TEST_SETS[corpus]}), not a "
                f"benchmark result: the full audio-visual model given {given}, trained on unpaired real "
                f"data (RAVDESS voices of actors 02-18, CK+ faces); {labels_note}"
            )
            correct = int(round(pooled["wa"] * n))
            extra = {
                "n_clips": n,
                "input": list(INPUT_MODES[mode]),
                "wa_wilson_95": wilson_interval(correct, n),
                "training": training,
                "timings_s": {k: round(v, 1) for k, v in timings.items()},
            }
            if mode == "audio_video":  # the clip table holds every mode's predictions: stored once
                extra["clips"] = table[chosen].dropna(axis=1, how="all").to_dict("records")
            else:
                extra["clips_in"] = f"{GROUP}/{test_set}/audio_video"
            if corpus == "crema-d":
                extra["agreement_with_perceived_audiovisual"] = perceived_agreement(table[chosen], mode)
            record = ExperimentRecord(
                name=f"{GROUP}/{test_set}/{mode}",
                corpus=corpus,
                protocol=(
                    "train on unpaired real data: voices of RAVDESS actors 02-18 and CK+ faces (class-matched "
                    "pseudo-pairs, faces alone; early stopping on held-out RAVDESS actors and CK+ subjects); "
                    f"test on {n} real audio-visual clips of actor {', '.join(actors)} (never in training), "
                    "features extracted from the files"
                ),
                folds=[actors],
                seeds=list(ctx.seeds),
                metrics=aggregate(runs),
                command=_command(ctx),
                description=description,
                group=GROUP,
                pooled=pooled,
                extra=extra,
            )
            record_experiment(record, ctx.metrics_path)
            LOG.info("%-40s n=%2d UA %.3f WA %.3f", record.name, n, pooled["ua"], pooled["wa"])
            rows.append({"name": record.name, "n": n, "ua": pooled["ua"], "wa": pooled["wa"]})
    return rows


def recorded_clips(metrics_path: Path | str = METRICS_PATH) -> pd.DataFrame:
    """The per-clip table of the recorded end-to-end check (both test sets; empty when not recorded)."""
    experiments = load_metrics(metrics_path)["experiments"]
    tables = [
        pd.DataFrame(experiments[name]["extra"]["clips"])
        for name in (f"{GROUP}/{test_set}/audio_video" for test_set in TEST_SETS.values())
        if name in experiments
    ]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=shared_data_dir(), help="the real clips (../shared/data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one trained model per seed")
    parser.add_argument("--metrics", type=Path, default=METRICS_PATH, help="metrics JSON to update")
    parser.add_argument("--quick", action="store_true", help="a handful of clips, 1 epoch: smoke run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.data_dir.exists():
        LOG.warning("real data folder %s not found: nothing to check", args.data_dir)
        return 0
    ctx = Context(
        data_dir=args.data_dir, metrics_path=args.metrics, seeds=tuple(args.seeds), quick=args.quick, command=COMMAND
    )
    run_end_to_end(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def confusion_figure(table: pd.DataFrame, smoke: bool = False):
    """Confusion counts per test set (rows) and input mode (columns) from a :func:`clip_table`."""
    title = ("SMOKE RUN - " if smoke else "") + "End-to-end check on real clips (tiny n, not a benchmark)"
    return plot_confusion_grid(table, TEST_SETS, list(INPUT_MODES), title)
