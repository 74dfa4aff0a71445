"""The voice recipe with the utterance input: a candidate recipe of the training command, the one name that switches
the shipped voice model to it, and ``av`` following the shipped voice model's audio features."""

import argparse
import dataclasses

import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.experiments import training_run
from emotion_lib.experiments.pretrained import (
    CANDIDATE_RECIPES,
    RECIPES,
    SHIPPED_VOICE,
    VOICE_UTTERANCE,
    recipe,
    replace_recipe,
    validate_recipe,
)
from emotion_lib.experiments.pretrained_heads import check_expert_audio
from emotion_lib.experiments.voice_recipes import VOICE_FRAME_SET, VOICE_RECIPE


def test_the_utterance_recipe_is_the_voice_study_recipe_and_a_train_choice():
    validate_recipe("voice-utterance", VOICE_UTTERANCE)
    assert recipe("voice-utterance") is VOICE_UTTERANCE and set(CANDIDATE_RECIPES) == {"voice-utterance"}
    assert "voice-utterance" not in RECIPES  # not shipped: RECIPES are the committed models
    assert (
        VOICE_UTTERANCE.config == VOICE_RECIPE.replace(refit=False, refit_ensemble=False)
        and VOICE_RECIPE.utterance_features == "ComParE_2016"
    )
    assert (
        VOICE_UTTERANCE.extraction.audio_feature_set == VOICE_FRAME_SET and not VOICE_UTTERANCE.extraction.video_backend
    )
    assert VOICE_UTTERANCE.voice_corpora == RECIPES["voice"].voice_corpora
    parser = argparse.ArgumentParser()
    training_run.add_arguments(parser)
    assert parser.parse_args(["--recipe", "voice-utterance"]).recipe == "voice-utterance"
    with pytest.raises(ValueError, match="unknown recipe 'voice-x'; expected one of .*voice-utterance"):
        recipe("voice-x")


def test_av_extracts_the_audio_features_of_the_shipped_voice_model_and_refuses_another():
    assert RECIPES["voice"] is SHIPPED_VOICE
    av = RECIPES["av"]
    shipped = (SHIPPED_VOICE.extraction.audio_feature_set, SHIPPED_VOICE.extraction.audio_level)
    assert (av.extraction.audio_feature_set, av.extraction.audio_level) == shipped
    check_expert_audio("av", av, SHIPPED_VOICE.extraction)
    with pytest.raises(ValueError, match="trained on ComParE_2016 lld: train 'voice' with the shipped recipe"):
        check_expert_audio("av", av, VOICE_UTTERANCE.extraction)
    switched = replace_recipe("av", extraction=dataclasses.replace(av.extraction, audio_feature_set="ComParE_2016"))
    check_expert_audio("av", switched, VOICE_UTTERANCE.extraction)
