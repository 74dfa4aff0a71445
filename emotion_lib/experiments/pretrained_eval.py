"""Small checks of the shipped models (``models/voice``, ``face``, ``av``, ``av-branched``) on held-out real clips.

Not benchmarks: each test set is one actor (RAVDESS actor 01: 44 audio clips and the 44 face videos of the same
sentences; CREMA-D actor 1001: 6 audio-visual clips), whom no shipped model saw in training or validation. The
clips go through the path users take: feature extraction with each bundle's own settings, the bundle's
normalisers, prediction. Recorded as ``pretrained/<model>/<test set>/<input>`` in ``reports/metrics.json`` by
``python -m emotion_lib evaluate --only pretrained``:

- ``face`` on the RAVDESS actor-01 face videos and the CREMA-D 1001 videos (video only);
- ``voice`` on RAVDESS actor 01's audio clips and the CREMA-D 1001 clips (audio only);
- ``av`` (the late fusion) and ``av-branched`` (the original design's branched model) on the 50 audio-visual clips
  with both modalities, audio only and video only (the other one masked), per test set and pooled
  (:data:`POOLED_FACE_VIDEOS`).

For the face model ``extra`` also holds its UA without the neutral clips (over the five classes CK+ has).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.clips import ravdess_speech_clips
from emotion_lib.evaluation.metrics import aggregate, classification_metrics, wilson_interval
from emotion_lib.evaluation.records import ExperimentRecord, record_experiment
from emotion_lib.experiments.common import Context, audio_functionals, cached_features
from emotion_lib.experiments.end_to_end_data import INPUT_MODES, load_av_clips
from emotion_lib.experiments.pretrained import HELD_OUT, RECIPES, assert_held_out
from emotion_lib.features.store import ClipFeatures
from emotion_lib.labels import EMOTIONS, emotion_index
from emotion_lib.paths import PRETRAINED_DIR
from emotion_lib.sequences.pairing import PartialSequenceData
from emotion_lib.training.bundle import MODEL_FILE, ModelBundle, load_bundle, read_manifest
from emotion_lib.training.trainer import predict_data

LOG = logging.getLogger(__name__)

GROUP = "pretrained"
AV_CHECKS = (("ravdess-faces", "ravdess_actor01", tuple(INPUT_MODES)), ("crema-d", "crema_d_1001", tuple(INPUT_MODES)))
"""The checks of an audio-visual model: both test sets, each with both modalities, audio only and video only."""
CHECKS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "face": (("ravdess-faces", "ravdess_actor01", ("video",)), ("crema-d", "crema_d_1001", ("video",))),
    "voice": (("ravdess", "ravdess_actor01", ("audio",)), ("crema-d", "crema_d_1001", ("audio",))),
    "av": AV_CHECKS,
    "av-branched": AV_CHECKS,
}
"""Shipped model -> (corpus of the test clips, test set name, input modes) it is checked on."""
POOLED_FACE_VIDEOS = "real_face_videos"
"""The test set of an audio-visual model's :data:`AV_CHECKS` pooled: all 50 real face videos (RAVDESS actor 01's 44
and CREMA-D actor 1001's 6), the set the audio-visual figure of the model card is read on."""


def checked_sets(model: str) -> tuple[tuple[str | None, str, tuple[str, ...]], ...]:
    """The (corpus, test set, input modes) recorded for ``model``: its :data:`CHECKS` and, for an audio-visual
    model, :data:`POOLED_FACE_VIDEOS` (corpus ``None``: both)."""
    pooled = ((None, POOLED_FACE_VIDEOS, tuple(INPUT_MODES)),) if CHECKS[model] == AV_CHECKS else ()
    return CHECKS[model] + pooled


def test_clips(ctx: Context, corpus: str) -> pd.DataFrame:
    """The held-out test clips of ``corpus``: RAVDESS actor 01's audio clips (``ravdess``), its face videos
    (``ravdess-faces``) or the CREMA-D actor-1001 audio-visual clips (``crema-d``)."""
    if corpus == "ravdess":
        return ravdess_speech_clips(ctx.data_dir, ("01",), subset=2 if ctx.quick else 0)
    clips = load_av_clips(ctx.data_dir, ctx.quick)
    return clips[clips["corpus"] == corpus].reset_index(drop=True)


def bundle_inputs(
    bundle: ModelBundle,
    clips: pd.DataFrame,
    features: dict[str, ClipFeatures],
    given: tuple[str, ...],
    utterance: np.ndarray | None = None,
) -> PartialSequenceData:
    """The clips as inputs of ``bundle``'s model, normalised with its normalisers; the modalities not ``given``
    are masked. ``utterance``: the clips' unnormalised utterance vectors for a model with that input (zeros, the
    training mean, when the voice is masked, as ``predict`` gives a file without a voice)."""
    audio_norm, video_norm = bundle.normalisers.get("audio"), bundle.normalisers.get("video")
    audio, video, masks = [], [], []
    for clip_id in clips["clip_id"]:
        clip = features[clip_id]
        audio.append(audio_norm.transform(clip.audio) if audio_norm is not None else clip.audio)
        has_video = "video" in given and clip.video is not None
        if has_video and video_norm is not None:
            video.append(video_norm.transform(clip.video, mask=clip.video_mask))
        else:
            video.append(clip.video if has_video else None)
        masks.append(clip.video_mask if has_video else None)
    return PartialSequenceData(
        audio,
        [emotion_index(e) for e in clips["emotion"]],
        clips["clip_id"].tolist(),
        video,
        masks,
        bundle.config.video_dim,
        utterance=None if utterance is None else _normalised_utterances(bundle, utterance, "audio" in given),
        audio_present=np.full(len(clips), "audio" in given),
    )


def _normalised_utterances(bundle: ModelBundle, vectors: np.ndarray, voice: bool) -> np.ndarray:
    normalised = bundle.normalisers["utterance"].transform(vectors)
    return normalised if voice else np.zeros_like(normalised)


def clip_utterances(ctx: Context, bundle: ModelBundle, clips: pd.DataFrame) -> np.ndarray | None:
    """The clips' utterance vectors (the bundle's functionals, cached) for a model with that input, else ``None``."""
    if bundle.utterance is None:
        return None
    rows, kept = audio_functionals(clips, bundle.utterance.feature_set, ctx.cache_dir)
    if list(kept["clip_id"]) != list(clips["clip_id"]):
        raise RuntimeError(f"{bundle.utterance.feature_set} functionals are missing for some test clips")
    return rows


def load_shipped(name: str, models_dir: Path | str = PRETRAINED_DIR) -> ModelBundle:
    """The shipped bundle ``name`` (checksums verified), checked to hold out the actors of the test clips."""
    path = Path(models_dir) / name
    if not path.exists():
        raise FileNotFoundError(
            f"shipped model {path} not found: train it with python -m emotion_lib train --recipe {name}"
        )
    bundle = load_bundle(path)
    assert_held_out(bundle_sides(bundle), HELD_OUT)
    return bundle


def _record(ctx: Context, model: str, test_set: str, corpus: str, mode: str, table: pd.DataFrame, bundle) -> dict:
    """Record the predictions ``table`` (clip_id, actor, emotion, predicted, confidence) of one check."""
    metrics = classification_metrics(table["emotion"], table["predicted"], EMOTIONS)
    n, actors = len(table), sorted(table["actor"].astype(str).unique())
    whose = "that actor" if len(actors) == 1 else "those actors"
    held_out = "one held-out actor" if len(actors) == 1 else f"{len(actors)} held-out actors"
    masked = RECIPES[model].kind == "av" and mode != "audio_video"
    given = " + ".join(INPUT_MODES[mode]) + (" (the other modality masked)" if masked else "")
    extra = {
        "n_clips": n,
        "input": list(INPUT_MODES[mode]),
        "wa_wilson_95": wilson_interval(int(round(metrics["wa"] * n)), n),
        "bundle": f"models/{model}",
        "model_sha256": bundle_model_sha(bundle),
        "clips": table.to_dict("records"),
    }
    if model == "face":
        five = table[table["emotion"] != "neutral"]
        extra["ua_without_neutral"] = classification_metrics(five["emotion"], five["predicted"], EMOTIONS)["ua"]
    record = ExperimentRecord(
        name=f"{GROUP}/{model}/{test_set}/{mode}",
        corpus=corpus,
        protocol=f"the shipped {model} model (trained without actor {', '.join(actors)}) on {n} clips of {whose}, "
        "features extracted from the files with the bundle's settings",
        folds=[actors],
        seeds=[int(bundle.config.seed)],
        metrics=aggregate([metrics]),
        command=ctx.command_for(GROUP),
        description=("SMOKE RUN, a handful of clips: " if ctx.quick else "")
        + f"SMALL CHECK on n={n} clips of {held_out} ({test_set}), not a benchmark: the shipped {model} "
        f"model (models/{model}, {bundle.metadata.get('description', RECIPES[model].description)}) given {given}",
        group=GROUP,
        pooled=metrics,
        extra=extra,
    )
    record_experiment(record, ctx.metrics_path)
    LOG.info("%-45s n=%2d UA %.3f WA %.3f", record.name, n, metrics["ua"], metrics["wa"])
    return {"name": record.name, "n": n, "ua": metrics["ua"], "wa": metrics["wa"]}


def bundle_model_sha(bundle: ModelBundle) -> str:
    """The manifest checksum of the bundle's model file (ties a record to the committed model)."""
    manifest = read_manifest(bundle.path)
    return manifest["files"][manifest.get("model", MODEL_FILE)]["sha256"]


def check_model(ctx: Context, model: str, models_dir: Path | str = PRETRAINED_DIR) -> list[dict]:
    """Run and record every check of the shipped model ``model`` (see :data:`CHECKS`)."""
    bundle = load_shipped(model, models_dir)
    rows, tables = [], {}
    for corpus, test_set, modes in CHECKS[model]:
        features, clips = cached_features(test_clips(ctx, corpus), bundle.extraction, ctx.cache_dir)
        utterance = clip_utterances(ctx, bundle, clips)
        for mode in modes:
            inputs = bundle_inputs(bundle, clips, features, INPUT_MODES[mode], utterance)
            probabilities = predict_data(bundle.model, inputs)
            table = (
                clips[["clip_id", "actor", "emotion"]]
                .astype(str)
                .assign(
                    predicted=np.asarray(EMOTIONS)[probabilities.argmax(axis=1)],
                    confidence=probabilities.max(axis=1).round(3),
                )
            )
            rows.append(_record(ctx, model, test_set, corpus, mode, table, bundle))
            tables.setdefault(mode, []).append(table)
    if CHECKS[model] == AV_CHECKS:
        corpora = "+".join(corpus for corpus, _, _ in AV_CHECKS)
        for mode, parts in tables.items():
            pooled = pd.concat(parts, ignore_index=True)
            rows.append(_record(ctx, model, POOLED_FACE_VIDEOS, corpora, mode, pooled, bundle))
    return rows


def bundle_sides(bundle: ModelBundle) -> pd.DataFrame:
    """The (corpus, actor, side) table a shipped bundle's metadata records."""
    return pd.DataFrame(bundle.metadata.get("actors", []), columns=["corpus", "actor", "side"])


def run_pretrained(ctx: Context) -> list[dict]:
    """Check every shipped model of :data:`CHECKS` on the held-out actors; record the results (group ``pretrained``)."""
    rows = []
    for model in CHECKS:
        rows += check_model(ctx, model)
    return rows


def figures_table(experiments: dict[str, dict]) -> str:
    """The ``pretrained`` records of ``experiments`` (``load_metrics(...)['experiments']``) as a markdown table
    (model, test set, input, n, UA, WA), the figures of ``MODEL_CARD.md``."""
    lines = ["| model | test set | input | n | UA | WA |", "|---|---|---|---|---|---|"]
    for model in CHECKS:
        for _, test_set, modes in checked_sets(model):
            for mode in modes:
                record = experiments.get(f"{GROUP}/{model}/{test_set}/{mode}")
                if record is None:
                    continue
                pooled, n = record["pooled"], record["extra"]["n_clips"]
                given = " + ".join(INPUT_MODES[mode])
                lines.append(f"| {model} | {test_set} | {given} | {n} | {pooled['ua']:.1%} | {pooled['wa']:.1%} |")
    return "\n".join(lines)
