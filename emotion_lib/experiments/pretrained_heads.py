"""The shipped models that train nothing: a recipe with a fixed ``head`` over the FER2013 probabilities.

``face`` is the head alone (:class:`~emotion_lib.models.probability_head.ProbabilityHead`); ``av`` fuses the
shipped ``voice`` bundle late with it (:func:`~emotion_lib.models.late_fusion.build_late_fusion`). Their choices
were made on CK+ (:mod:`emotion_lib.experiments.face_zero_shot`), whose subjects the manifest lists with side
``selection`` (next to the voice model's training and validation actors for ``av``); the held-out actors are
checked on that list as for a trained model. ``python -m emotion_lib train --recipe face`` (then ``av``) writes them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import pandas as pd

from emotion_lib.evaluation.metrics import classification_metrics
from emotion_lib.experiments.common import Context
from emotion_lib.experiments.face_model import face_sequences
from emotion_lib.experiments.pretrained import Recipe, assert_held_out, default_output
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.config import ModelConfig
from emotion_lib.models.late_fusion import build_late_fusion
from emotion_lib.training.bundle import load_bundle, read_manifest

HEAD_LICENCE = (
    "the FER2013 network of the MIT fer package (FER2013 data: the provider's terms), no weights trained here; CK+ "
    "(research-use terms) only chose the pooling: see MODEL_CARD.md"
)


def head_model(
    name: str, recipe: Recipe, ctx: Context
) -> tuple[keras.Model, ModelConfig, dict[str, Normaliser], dict[str, Any]]:
    """``(keras model, ModelConfig, normalisers, manifest metadata)`` of a recipe with a fixed ``head``.

    Nothing is trained. The head's UA on every CK+ sequence (the data its choices were made on) goes into the
    metadata; an ``av`` recipe adds its ``audio_expert`` bundle (its model, audio normaliser and actors).
    """
    if recipe.head is None:
        raise ValueError(f"recipe {name!r} has no probability head: it is trained (python -m emotion_lib train)")
    faces = face_sequences(ctx, recipe.face_features)
    sides = pd.DataFrame({"corpus": "ckplus", "actor": sorted(set(faces.subjects)), "side": "selection"})
    predicted = np.asarray(EMOTIONS)[recipe.head.predict(faces.original).argmax(axis=1)]
    extra: dict[str, Any] = {"probability_head": dataclasses.asdict(recipe.head)}
    metadata: dict[str, Any] = {
        "recipe": name,
        "description": recipe.description,
        "face_features": recipe.face_features,
        "head": recipe.head.name,
        "held_out": {corpus: list(actors) for corpus, actors in recipe.held_out.items()},
        "train_examples": 0,
        "selection_examples": len(faces.labels),
        "selection_ua_ckplus": classification_metrics(faces.labels, predicted, EMOTIONS)["ua"],
        "licence": HEAD_LICENCE,
    }
    model, normalisers = recipe.head.build(), {}
    if recipe.audio_expert is not None:
        expert = load_bundle(default_output(recipe.audio_expert))
        check_expert_audio(name, recipe, expert.extraction)
        sides = pd.concat([pd.DataFrame(expert.metadata["actors"]), sides], ignore_index=True)
        model = build_late_fusion(expert.model, model, recipe.audio_weight)
        normalisers = {name: expert.normalisers[name] for name in ("audio", "utterance") if name in expert.normalisers}
        extra["late_fusion"] = {
            "audio_model": f"models/{recipe.audio_expert}",
            "audio_model_sha256": read_manifest(expert.path)["files"][read_manifest(expert.path)["model"]]["sha256"],
            "audio_weight": recipe.audio_weight,
        }
        metadata["audio_model"] = {**extra["late_fusion"], "description": expert.metadata.get("description")}
        metadata["licence"] = f"{expert.metadata.get('licence', '')}; the face head: {HEAD_LICENCE}"
    assert_held_out(sides, recipe.held_out)
    metadata["actors"] = sides.astype(str).to_dict("records")
    dims = {}
    if recipe.audio_expert is not None:
        dims = {name: getattr(expert.config, name) for name in ("audio_dim", "utterance_features", "utterance_dim")}
    config = recipe.config.replace(seed=recipe.seed, extra=extra, **dims)
    return model, config, normalisers, metadata


def check_expert_audio(name: str, recipe: Recipe, expert: ExtractionConfig) -> None:
    """Raise ``ValueError`` unless the audio expert's bundle was trained on the audio features ``recipe`` extracts
    (the fused model is fed what its voice model was)."""
    given = (recipe.extraction.audio_feature_set, recipe.extraction.audio_level)
    if (expert.audio_feature_set, expert.audio_level) != given:
        raise ValueError(
            f"recipe {name!r} extracts {' '.join(given)} audio features but its {recipe.audio_expert!r} bundle "
            f"({default_output(recipe.audio_expert)}) was trained on {expert.audio_feature_set} {expert.audio_level}: "
            f"train {recipe.audio_expert!r} with the shipped recipe (SHIPPED_VOICE) first"
        )
