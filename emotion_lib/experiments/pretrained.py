"""The pretrained real-data models shipped in ``models/``: one recipe each, trained by one call.

:data:`RECIPES` holds, as plain data, what each shipped model is trained on: corpora and actors, feature
extraction, :class:`~emotion_lib.models.config.ModelConfig`, the CK+ face representation and the held-out actors.
:func:`~emotion_lib.experiments.training_run.train_recipe` trains one (or, for a recipe with a fixed ``head``,
assembles it: :mod:`emotion_lib.experiments.pretrained_heads`) and writes its bundle (``.keras`` model,
configuration, normalisers, an int8 TFLite export for a trained model, and the manifest checksums) to
``emotion_lib.paths.PRETRAINED_DIR / name``:

- ``voice``: eGeMAPSv02 frame features (openSMILE), audio branch alone, on every real voice corpus here
  (RAVDESS actors 02-18, SAVEE, CREMA-D without actors 1001/1002);
- ``voice-utterance``: the same corpora with the voice study's recipe
  (:data:`~emotion_lib.experiments.voice_recipes.VOICE_RECIPE`: ComParE_2016 frames and, as the utterance
  input, the clip's ComParE_2016 functionals); frames and functionals are normalised with the global statistics of
  the training clips (what a single new clip of an unknown speaker gets), not per speaker as in its cross-validation.
  A candidate (:data:`CANDIDATE_RECIPES`), not shipped: :data:`SHIPPED_VOICE` names the recipe the shipped ``voice``
  model is trained with (:data:`VOICE_EGEMAPS`; :data:`VOICE_UTTERANCE` to switch);
- ``face``: the FER2013 network's own 7 class probabilities per frame (the ``fer`` backend), pooled over the clip
  and mapped to the six classes by a fixed head (:class:`~emotion_lib.models.probability_head.ProbabilityHead`;
  nothing trained, its pooling and class balancing chosen on CK+ by :mod:`emotion_lib.experiments.face_zero_shot`);
- ``av``: late fusion of the shipped ``voice`` model and the ``face`` head (a product of their probabilities,
  equal weights), so it answers with one modality too;
- ``av-branched``: the original design's branched audio-visual model (both branches, concatenation, modality
  dropout), trained on unpaired real data (RAVDESS voices and CK+ faces as class-matched pseudo-pairs).

Every shipped model holds out RAVDESS actor 01 and CREMA-D actors 1001 and 1002 (the clips that measure them):
:func:`assert_held_out` raises when one of them is on the training, validation or selection side. Early stopping
watches speaker-independent validation actors (a fold of the committed actor folds of each corpus). Run with
``python scripts/train_branched_attention.py --recipe voice`` (or ``python -m emotion_lib train --recipe voice``;
``av`` after ``voice``, whose bundle it holds).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_lib.data.clips import RAVDESS_ACTORS, ravdess_speech_clips
from emotion_lib.data.corpora import load_corpus
from emotion_lib.data.splits import folds_for
from emotion_lib.experiments.common import Context, audio_functionals, cached_features
from emotion_lib.experiments.end_to_end_data import (
    AV_EXTRACTION,
    VALIDATION_FOLD,
    VOICE_EXTRACTION,
    assert_unseen,
    training_data,
)
from emotion_lib.experiments.ravdess_neural import RAVDESS_NEURAL_BASE
from emotion_lib.experiments.voice_recipes import VOICE_FRAME_SET, VOICE_RECIPE
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.labels import emotion_index
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.probability_head import ProbabilityHead
from emotion_lib.paths import PRETRAINED_DIR
from emotion_lib.sequences.data import SequenceData
from emotion_lib.sequences.pairing import PartialSequenceData
from emotion_lib.training.trainer import TrainResult, predict_data

LOG = logging.getLogger(__name__)

HELD_OUT: dict[str, tuple[str, ...]] = {"ravdess-faces": ("01",), "crema-d": ("1001", "1002")}
"""Actors no shipped model sees in training or validation (RAVDESS actor 01's voice and face videos, CREMA-D
1001/1002): the clips of :mod:`emotion_lib.experiments.pretrained_eval` measure the models on them."""
FACE_PROBABILITIES = ExtractionConfig(video_backend="fer", backend_options={"output": "probabilities"})
"""The fer backend's 7 FER2013 class probabilities per frame at 5 frames/s (the ``face`` recipe's input)."""
FACE_HEAD = ProbabilityHead("mean_probability", "fear", balanced=True)
"""The zero-shot head of ``face`` and ``av``: the best CK+ UA of
:data:`emotion_lib.experiments.face_zero_shot.CANDIDATES` (chosen on CK+ alone: 53.3 %, tied with the
mean-log-probability pooling and listed first; until 2026-12-02 the unbalanced ``mean_log_probability`` head, 50.0 %,
when the balanced heads were not candidates)."""
TRAINED_MODEL_FILE = "model_best.keras"
"""The model file of every bundle the training command writes (the name the original demo path expects)."""


@dataclass(frozen=True)
class Recipe:
    """How one shipped model is trained: its data, features, model configuration and held-out actors."""

    kind: str
    """``voice`` (audio model), ``face`` (video model) or ``av`` (both modalities)."""
    description: str
    config: ModelConfig
    """The model; ``audio_dim`` / ``video_dim`` are set from the data."""
    extraction: ExtractionConfig
    """The feature extraction of new clips (what the bundle tells the demo and the predictor)."""
    voice_corpora: tuple[str, ...] = ()
    """Voice corpora of a ``voice`` recipe (RAVDESS speech actors 02-18, the others whole less held-out actors)."""
    face_features: str = "fer_features"
    """The CK+ per-frame representation (:func:`emotion_lib.features.images.ckplus_features`) of ``face``/``av``."""
    held_out: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(HELD_OUT))
    seed: int = 0
    head: ProbabilityHead | None = None
    """A fixed head over the FER2013 probabilities instead of a trained model (``face``: nothing is trained; CK+
    only measures it); ``None``: the branched model of ``config``, trained."""
    audio_expert: str | None = None
    """With ``head``, an ``av`` recipe's audio model: the shipped bundle of this recipe (``voice``), fused late
    with the head (:func:`~emotion_lib.models.late_fusion.build_late_fusion`)."""
    audio_weight: float = 0.5
    """The audio model's weight in that late fusion (the face head's is ``1 - audio_weight``)."""


def _with_audio_of(extraction: ExtractionConfig, voice: ExtractionConfig) -> ExtractionConfig:
    """``extraction`` with the audio features (set and level) of ``voice``."""
    return dataclasses.replace(extraction, audio_feature_set=voice.audio_feature_set, audio_level=voice.audio_level)


VOICE_EGEMAPS = Recipe(
    kind="voice",
    description="audio branch (Conv1D -> BiLSTM -> attention) on eGeMAPSv02 frame features, ravdess_neural's "
    "configuration, trained on RAVDESS actors 02-18 and SAVEE (and CREMA-D except actors 1001/1002)",
    config=RAVDESS_NEURAL_BASE,
    extraction=VOICE_EXTRACTION,
    voice_corpora=("ravdess", "savee", "crema-d"),
)
"""eGeMAPSv02 frames with ``ravdess_neural``'s configuration, early-stopped (the shipped ``voice`` until
2026-12-03)."""
VOICE_EGEMAPS_REFIT = dataclasses.replace(
    VOICE_EGEMAPS,
    description=VOICE_EGEMAPS.description + "; after early stopping, trained again from scratch on the training and "
    "validation actors together for the early-stopped epochs (refit)",
    config=VOICE_EGEMAPS.config.replace(refit=True),
)
"""The recipe of the shipped ``voice`` model: :data:`VOICE_EGEMAPS` refitted on its validation actors too."""
VOICE_UTTERANCE = Recipe(
    kind="voice",
    description=f"audio branch (Conv1D -> BiLSTM -> attention) on {VOICE_FRAME_SET} frame features with the clip's "
    f"{VOICE_RECIPE.utterance_features} functionals as a second input (Dropout -> Dense), the voice study's recipe "
    "(ravdess_voice_neural VOICE_RECIPE, trained once with early stopping: its cross-validation refit and the pair "
    "it averages are not part of the bundle recipe), trained on RAVDESS actors 02-18 and SAVEE (and CREMA-D except "
    "actors 1001/1002); frames and functionals normalised with the training clips' global statistics",
    config=VOICE_RECIPE.replace(refit=False, refit_ensemble=False),
    extraction=ExtractionConfig(audio_feature_set=VOICE_FRAME_SET, video_backend=None),
    voice_corpora=("ravdess", "savee", "crema-d"),
)
"""The voice study's recipe (:data:`~emotion_lib.experiments.voice_recipes.VOICE_RECIPE`) on the shipped
``voice`` model's corpora: ComParE_2016 frames and the clip's ComParE_2016 functionals (the utterance input)."""

SHIPPED_VOICE: Recipe = VOICE_EGEMAPS_REFIT
"""The recipe of the shipped ``voice`` model and of ``av``'s voice (its audio extraction): the best under the
shipped model's global normalisation on the inner fold (``voice_shipping_selection``, 3 seeds: eGeMAPS frames
51.9 %, :data:`VOICE_UTTERANCE` 50.2 %, eGeMAPS frames refitted 53.7 % UA, above on every seed). Another recipe
here to switch (then train ``voice``, then ``av``)."""

RECIPES: dict[str, Recipe] = {
    "voice": SHIPPED_VOICE,
    "face": Recipe(
        kind="face",
        description="the FER2013 network's own 7 class probabilities per frame (fer backend), each divided by the "
        "class's share of FER2013's training images (balanced), surprise counted as fear, the mean over the clip's "
        "face frames, renormalised over the six classes (zero-shot: nothing trained; pooling, balancing and surprise "
        "chosen on CK+ alone)",
        config=ModelConfig(modalities=("video",), video_dim=7, pooling="mean", augment=False, epochs=0),
        extraction=FACE_PROBABILITIES,
        face_features="fer_probabilities",
        head=FACE_HEAD,
    ),
    "av": Recipe(
        kind="av",
        description="late fusion of the shipped voice model and the face recipe's zero-shot FER2013 head: the "
        "product of their probabilities with equal weights (fixed a priori), either alone when the other modality "
        "is missing; nothing trained",
        config=ModelConfig(modalities=("audio", "video"), video_dim=7, augment=False, epochs=0),
        extraction=_with_audio_of(FACE_PROBABILITIES, SHIPPED_VOICE.extraction),
        face_features="fer_probabilities",
        head=FACE_HEAD,
        audio_expert="voice",
    ),
    "av-branched": Recipe(
        kind="av",
        description="branched audio-visual model (both branches + fusion, modality dropout) trained on unpaired real "
        "data: RAVDESS voices of actors 02-18 and CK+ faces as class-matched pseudo-pairs and faces alone",
        config=ModelConfig(modalities=("audio", "video")),
        extraction=AV_EXTRACTION,
    ),
}
"""Name -> :class:`Recipe` of the shipped models (``models/<name>/``)."""
CANDIDATE_RECIPES: dict[str, Recipe] = {"voice-utterance": VOICE_UTTERANCE}
"""Recipes of models not shipped (yet): ``train --recipe <name>`` writes ``models/<name>/`` unless ``--output-dir``
says otherwise; shipping one is pointing a :data:`RECIPES` entry at it (``"voice": VOICE_UTTERANCE``)."""


@dataclass
class RecipeData:
    """Training and validation examples of a recipe, normalisers fitted on training data, who is on which side."""

    train: SequenceData
    validation: SequenceData
    normalisers: dict[str, Normaliser]
    sides: pd.DataFrame
    """One row per (corpus, actor) with ``side`` ``train`` or ``validation``."""


def validate_recipe(name: str, recipe: Recipe) -> None:
    """Raise ``ValueError`` naming the recipe when a field is inconsistent (kind, modalities, held-out actors)."""
    modalities = {"voice": ("audio",), "face": ("video",), "av": ("audio", "video")}
    if recipe.kind not in modalities:
        raise ValueError(f"recipe {name!r}: kind must be one of {sorted(modalities)}, got {recipe.kind!r}")
    if tuple(recipe.config.modalities) != modalities[recipe.kind]:
        raise ValueError(
            f"recipe {name!r}: a {recipe.kind} model has modalities {modalities[recipe.kind]}, "
            f"the configuration says {tuple(recipe.config.modalities)}"
        )
    if recipe.kind == "voice" and not recipe.voice_corpora:
        raise ValueError(f"recipe {name!r}: a voice model needs voice_corpora")
    if recipe.kind != "voice" and recipe.extraction.video_backend is None:
        raise ValueError(f"recipe {name!r}: a model with a video branch needs a face backend in its extraction")
    if recipe.head is not None and dict(recipe.extraction.backend_options).get("output") != "probabilities":
        raise ValueError(f"recipe {name!r}: a probability head reads the fer backend's output='probabilities'")
    if recipe.head is not None and (recipe.kind == "av") != (recipe.audio_expert is not None):
        raise ValueError(f"recipe {name!r}: an av recipe with a probability head needs an audio_expert (and only it)")
    for corpus, actors in HELD_OUT.items():
        if not set(actors) <= set(recipe.held_out.get(corpus, ())):
            raise ValueError(f"recipe {name!r} must hold out {corpus} actors {', '.join(actors)}")


def assert_held_out(sides: pd.DataFrame, held_out: Mapping[str, tuple[str, ...]] = HELD_OUT) -> None:
    """Raise ``RuntimeError`` when a held-out actor is on the training or validation side (``sides``: corpus,
    actor; RAVDESS audio actors count as the ``ravdess-faces`` actors of the same number)."""
    table = pd.DataFrame(
        [(corpus, actor) for corpus, actors in held_out.items() for actor in actors], columns=["corpus", "actor"]
    )
    assert_unseen(sides, table)


def _held_out_actors(corpus: str, held_out: Mapping[str, tuple[str, ...]]) -> set[str]:
    return set(held_out.get("ravdess-faces" if corpus == "ravdess" else corpus, ()))


def voice_clips(data_dir: Path | str, corpora: tuple[str, ...], held_out: Mapping, quick: bool = False) -> pd.DataFrame:
    """The voice clips of ``corpora`` (RAVDESS: speech, actors 02-18) without the held-out actors."""
    tables = []
    for corpus in corpora:
        folder = Path(data_dir) / corpus
        if not folder.exists():
            LOG.warning("voice corpus %s not found at %s: left out", corpus, folder)
            continue
        if corpus == "ravdess":
            clips = ravdess_speech_clips(data_dir, RAVDESS_ACTORS[1:], subset=2 if quick else 0)
        else:
            clips, _ = load_corpus(corpus, folder)
        clips = clips[~clips["actor"].astype(str).isin(_held_out_actors(corpus, held_out))]
        if quick:
            clips = clips.groupby("actor", group_keys=False).head(6)
        LOG.info("%s: %d voice clips of %d actors", corpus, len(clips), clips["actor"].nunique())
        tables.append(clips)
    clips = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if clips.empty:
        raise FileNotFoundError(f"no voice clips of {', '.join(corpora)} under {data_dir}")
    return clips


def validation_mask(clips: pd.DataFrame) -> np.ndarray:
    """Rows whose actor is in the validation fold (:data:`VALIDATION_FOLD`) of its corpus's actor folds."""
    chosen = np.zeros(len(clips), bool)
    for corpus, part in clips.groupby("corpus"):
        actors = sorted(part["actor"].astype(str).unique())
        if len(actors) < 2:
            continue
        folds = folds_for(str(corpus), actors)
        fold = VALIDATION_FOLD if VALIDATION_FOLD in set(folds["fold"]) else int(folds["fold"].min())
        rows = (clips["corpus"] == corpus).to_numpy()
        chosen |= rows & clips["actor"].astype(str).isin(folds.loc[folds["fold"] == fold, "actor"]).to_numpy()
    return chosen


def voice_data(ctx: Context, recipe: Recipe) -> RecipeData:
    """Voices of the recipe's corpora, split by speaker, normalised globally with training statistics."""
    clips = voice_clips(ctx.data_dir, recipe.voice_corpora, recipe.held_out, ctx.quick)
    LOG.info("voice features of %d clips (extracted into %s on first use, then cached)", len(clips), ctx.cache_dir)
    features, clips = cached_features(clips, recipe.extraction, ctx.cache_dir)
    clips = clips[[len(features[c].audio) > 0 for c in clips["clip_id"]]].reset_index(drop=True)
    vectors = utterance_vectors(ctx, recipe, clips)
    clips = clips[clips["clip_id"].isin(vectors)].reset_index(drop=True) if vectors else clips
    val = validation_mask(clips)
    normalisers = {"audio": Normaliser("global").fit([features[c].audio for c in clips.loc[~val, "clip_id"]])}
    if vectors:
        normalisers["utterance"] = Normaliser("global").fit(
            [np.vstack([vectors[c] for c in clips.loc[~val, "clip_id"]])]
        )

    def side(chosen: np.ndarray) -> SequenceData:
        part = clips[chosen]
        utterance = None
        if vectors:
            utterance = normalisers["utterance"].transform(np.vstack([vectors[c] for c in part["clip_id"]]))
        return SequenceData(
            [normalisers["audio"].transform(features[c].audio) for c in part["clip_id"]],
            [emotion_index(e) for e in part["emotion"]],
            [f"{corpus}:{c}" for corpus, c in zip(part["corpus"], part["clip_id"])],
            utterance=utterance,
        )

    sides = clips[["corpus", "actor"]].assign(side=np.where(val, "validation", "train")).drop_duplicates()
    return RecipeData(side(~val), side(val), normalisers, sides.reset_index(drop=True))


def utterance_vectors(ctx: Context, recipe: Recipe, clips: pd.DataFrame) -> dict[str, np.ndarray]:
    """``{clip_id: functionals (D,)}`` of the recipe's utterance input (empty when it has none), through the
    shared feature cache (extracted on first use; a clip whose functionals fail is left out and reported)."""
    if not recipe.config.utterance_features:
        return {}
    LOG.info("%s functionals of %d clips (cached)", recipe.config.utterance_features, len(clips))
    rows, kept = audio_functionals(clips, recipe.config.utterance_features, ctx.cache_dir)
    return dict(zip(kept["clip_id"], rows))


def _faces_only(data: PartialSequenceData) -> SequenceData:
    """The faces-alone examples (``face:`` names) of pseudo-pair data, as video-only sequences."""
    return data.subset([i for i, name in enumerate(data.names) if name.startswith("face:")])


def face_av_data(ctx: Context, recipe: Recipe) -> RecipeData:
    """The end-to-end check's unpaired training data (:func:`end_to_end_data.training_data`); a ``face`` recipe
    keeps its faces alone (with mirror images in training) and the video normaliser."""
    LOG.info("RAVDESS voices and CK+ %s (extracted on first use, then cached)", recipe.face_features)
    data = training_data(ctx, recipe.seed, recipe.face_features)
    if recipe.kind == "face":
        faces = data.sides[data.sides["corpus"] == "ckplus"].reset_index(drop=True)
        return RecipeData(
            _faces_only(data.train), _faces_only(data.validation), {"video": data.video_normaliser}, faces
        )
    normalisers = {"audio": data.audio_normaliser, "video": data.video_normaliser}
    return RecipeData(data.train, data.validation, normalisers, data.sides)


def recipe_data(ctx: Context, recipe: Recipe) -> RecipeData:
    """The training and validation data of ``recipe`` (held-out actors checked)."""
    data = voice_data(ctx, recipe) if recipe.kind == "voice" else face_av_data(ctx, recipe)
    assert_held_out(data.sides, recipe.held_out)
    return data


def recipe_config(recipe: Recipe, data: RecipeData, epochs: int | None = None, seed: int | None = None) -> ModelConfig:
    """The recipe's :class:`ModelConfig` with the feature widths of ``data`` (and ``epochs`` / ``seed`` if given)."""
    changes: dict = {"seed": recipe.seed if seed is None else seed}
    if "audio" in recipe.config.modalities:
        changes["audio_dim"] = data.train.audio_dim
    if recipe.config.utterance_features:
        changes["utterance_dim"] = data.train.utterance_dim
    if "video" in recipe.config.modalities:
        changes["video_dim"] = data.train.video_dim
    if epochs is not None:
        changes["epochs"] = epochs
    return recipe.config.replace(**changes)


def validation_ua(result: TrainResult, data: SequenceData) -> float:
    """Unweighted accuracy (mean recall over the classes present) of the trained model on ``data``."""
    predicted = predict_data(result.model, data).argmax(axis=1)
    recalls = [np.mean(predicted[data.labels == label] == label) for label in np.unique(data.labels)]
    return float(np.mean(recalls))


def recipe_metadata(name: str, recipe: Recipe, data: RecipeData, result: TrainResult) -> dict:
    """What the bundle's manifest keeps about the training run."""
    return {
        "recipe": name,
        "description": recipe.description,
        "face_features": recipe.face_features if recipe.kind != "voice" else None,
        "held_out": {corpus: list(actors) for corpus, actors in recipe.held_out.items()},
        "actors": data.sides.astype(str).to_dict("records"),
        "train_examples": len(data.train),
        "validation_examples": len(data.validation),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "validation_ua": validation_ua(result, data.validation),
        "licence": "trained on RAVDESS (CC BY-NC-SA 4.0): non-commercial use only; see MODEL_CARD.md"
        if recipe.kind != "face"
        else "trained on CK+ (research-use terms) with fer's FER2013 network: see MODEL_CARD.md",
    }


def default_output(name: str) -> Path:
    """Where the shipped model ``name`` lives: ``PRETRAINED_DIR / name``."""
    return PRETRAINED_DIR / name


def recipe(name: str) -> Recipe:
    """The recipe ``name`` of :data:`RECIPES` or :data:`CANDIDATE_RECIPES` (a ``ValueError`` lists the known ones)."""
    known = {**CANDIDATE_RECIPES, **RECIPES}
    if name not in known:
        raise ValueError(f"unknown recipe {name!r}; expected one of {', '.join(known)}")
    return known[name]


def replace_recipe(name: str, **changes) -> Recipe:
    """A copy of recipe ``name`` with fields changed (e.g. a stronger ``config`` or ``face_features``)."""
    return dataclasses.replace(recipe(name), **changes)
