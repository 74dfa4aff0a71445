"""The training command, the recipes of the shipped models, their held-out actors and the committed bundles."""

from __future__ import annotations

import argparse
import logging
import runpy
import shutil
import sys
import tomllib

import numpy as np
import pandas as pd
import pytest

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib import cli
from emotion_lib.cli import main
from emotion_lib.evaluation.records import METRICS_PATH, load_metrics
from emotion_lib.experiments import pretrained, training_run
from emotion_lib.experiments.end_to_end_data import AV_EXTRACTION
from emotion_lib.experiments.pretrained import (
    HELD_OUT,
    RECIPES,
    TRAINED_MODEL_FILE,
    assert_held_out,
    replace_recipe,
    validate_recipe,
    validation_mask,
    voice_clips,
)
from emotion_lib.experiments.pretrained_eval import CHECKS, bundle_sides, checked_sets, figures_table, load_shipped
from emotion_lib.inference.predictor import pretrained_names, resolve_model
from emotion_lib.models.config import ModelConfig
from emotion_lib.paths import PRETRAINED_DIR, REPO_ROOT
from emotion_lib.sequences.data import random_clips
from emotion_lib.training import trainer
from emotion_lib.training.bundle import BundleError, load_bundle, read_manifest
from emotion_lib.training.export import TFLiteRunner, clip_windows
from emotion_lib.training.trainer import predict_data

SHIPPED_LIMIT_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, corpus_4_actors):
    """The session's 4-actor synthetic corpus (one test, one validation, two training actors; 24 clips) and a
    cache of this module's own."""
    root = tmp_path_factory.mktemp("train_cli")
    return corpus_4_actors, root / "cache", root


def _train_args(tiny, output, epochs: int = 2) -> list[str]:
    corpus, cache, _ = tiny
    return [
        "train",
        "--data-dir",
        str(corpus),
        "--cache-dir",
        str(cache),
        "--modalities",
        "audio",
        "--epochs",
        str(epochs),
        "--output-dir",
        str(output),
    ]


@pytest.fixture(scope="module")
def trained(tiny):
    """The bundle of an uninterrupted 2-epoch run of the train command."""
    output = tiny[2] / "runs" / "attention_focal_loss"
    assert main(_train_args(tiny, output)) == 0
    return output


def test_the_train_command_writes_a_loadable_bundle_with_model_best(trained):
    manifest = read_manifest(trained)
    assert manifest["model"] == TRAINED_MODEL_FILE and (trained / TRAINED_MODEL_FILE).is_file()
    files = {TRAINED_MODEL_FILE, "config.json", "normalisers.json", "model_int8.tflite", "model.tflite"}
    assert set(manifest["files"]) == files and manifest["lite_model"] == "model.tflite"
    bundle = load_bundle(trained)
    assert bundle.config.modalities == ("audio",) and bundle.config.epochs == 2
    assert bundle.extraction.video_backend is None and set(bundle.normalisers) == {"audio"}
    sides = pd.DataFrame(bundle.metadata["actors"])
    assert sides.groupby("actor")["split"].nunique().max() == 1  # each actor on one side
    assert set(sides["split"]) == {"train", "validation", "test"}
    data = random_clips(3, seed=1, audio_dim=bundle.config.audio_dim)
    probabilities = predict_data(bundle.model, data)
    assert probabilities.shape == (3, 6) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    window = clip_windows(data, bundle.config, limit=1)[0]
    assert TFLiteRunner(bundle.exports["int8"])(window).shape == (1, 6)
    assert (trained.parent / f".{trained.name}.training" / trainer.CHECKPOINT).is_file()  # not inside the bundle


def test_a_killed_run_resumes_and_ends_like_an_uninterrupted_one(tiny, trained, monkeypatch, caplog):
    output = tiny[2] / "killed" / "attention_focal_loss"
    original = trainer._log_epoch

    def kill_after_first_epoch(epoch, *args):
        original(epoch, *args)
        raise KeyboardInterrupt  # after the epoch's checkpoint was written, like a kill between epochs

    monkeypatch.setattr(trainer, "_log_epoch", kill_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        main(_train_args(tiny, output))
    assert not output.exists() and (output.parent / f".{output.name}.training" / trainer.CHECKPOINT).is_file()
    monkeypatch.setattr(trainer, "_log_epoch", original)
    with caplog.at_level(logging.INFO, logger="emotion_lib.training.trainer"):
        assert main(_train_args(tiny, output)) == 0
    assert "resuming" in caplog.text and "after epoch 1 of 2" in caplog.text
    assert "epoch 1/2" not in caplog.text and "epoch 2/2" in caplog.text
    resumed, whole = load_bundle(output), load_bundle(trained)
    for got, expected in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "extra",
    [
        ["--recipe", "voice", "--corpus", "ravdess"],
        ["--recipe", "av", "--loss", "focal"],
        ["--quick"],
        ["--recipe", "voice", "--stream"],
    ],
)
def test_options_that_do_not_go_together_are_refused(extra, tmp_path, capsys):
    assert main(["train", "--output-dir", str(tmp_path / "out"), *extra]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_epochs_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--epochs", "0"])
    assert exit_.value.code == 2 and "positive integer" in capsys.readouterr().err


def test_the_script_and_console_script_run_the_train_command(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append(argv) or 0)
    monkeypatch.setattr(sys, "argv", ["train-branched-attention", "--epochs", "1"])
    assert cli.train_main() == 0
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO_ROOT / "scripts" / "train_branched_attention.py"), run_name="__main__")
    assert exit_.value.code == 0 and calls == [["train", "--epochs", "1"]] * 2
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["train-branched-attention"] == "emotion_lib.cli:train_main"


# ------------------------------------------------------------------------------------------- recipes
def test_every_recipe_is_valid_and_holds_out_the_test_actors():
    assert set(RECIPES) == {"voice", "face", "av", "av-branched"} == set(CHECKS)
    for name, recipe in RECIPES.items():
        validate_recipe(name, recipe)
        for corpus, actors in HELD_OUT.items():
            assert set(actors) <= set(recipe.held_out[corpus])
    face = RECIPES["face"]
    assert face.face_features == "fer_probabilities" and face.extraction.backend_kwargs()["output"] == "probabilities"
    assert face.head is not None and RECIPES["av"].audio_expert == "voice" and RECIPES["voice"].head is None
    branched = RECIPES["av-branched"]  # the original design's model: both branches trained on pseudo-pairs
    assert branched.head is None and branched.config == ModelConfig(modalities=("audio", "video"))
    assert branched.extraction == AV_EXTRACTION and branched.face_features == "fer_features"


def test_every_recipe_is_a_train_choice_and_a_predict_model_name():
    parser = argparse.ArgumentParser()
    training_run.add_arguments(parser)
    assert parser.parse_args(["--recipe", "av-branched"]).recipe == "av-branched"
    for name in RECIPES:
        assert name in pretrained_names() and resolve_model(name) == PRETRAINED_DIR / name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"held_out": {"ravdess-faces": ("01",)}}, "must hold out crema-d"),
        ({"kind": "face"}, "modalities"),
        ({"voice_corpora": ()}, "needs voice_corpora"),
        ({"kind": "speech"}, "kind must be"),
    ],
)
def test_an_inconsistent_recipe_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        validate_recipe("voice", replace_recipe("voice", **changes))


def test_the_held_out_assertion_fails_on_a_held_out_actor():
    fine = pd.DataFrame({"corpus": ["ravdess", "savee", "ckplus"], "actor": ["02", "DC", "S005"], "side": "train"})
    assert_held_out(fine)
    for corpus, actor in (("ravdess", "01"), ("ravdess-faces", "01"), ("crema-d", "1001"), ("crema-d", "1002")):
        leaking = pd.concat([fine, pd.DataFrame({"corpus": [corpus], "actor": [actor], "side": ["validation"]})])
        with pytest.raises(RuntimeError, match="test actors also used"):
            assert_held_out(leaking)


def test_voice_clips_leave_out_the_held_out_actors_and_validation_is_by_speaker(shared_data):
    clips = voice_clips(shared_data, ("ravdess", "savee", "crema-d"), HELD_OUT)
    actors = set(zip(clips["corpus"], clips["actor"].astype(str)))
    assert ("ravdess", "01") not in actors and not any(corpus == "crema-d" for corpus, _ in actors)
    assert set(clips["corpus"]) == {"ravdess", "savee"} and len({a for c, a in actors if c == "ravdess"}) == 17
    val = validation_mask(clips)
    val_actors = set(zip(clips.loc[val, "corpus"], clips.loc[val, "actor"]))
    train_actors = set(zip(clips.loc[~val, "corpus"], clips.loc[~val, "actor"]))
    assert val_actors and not val_actors & train_actors
    assert {corpus for corpus, _ in val_actors} == set(clips["corpus"])  # each corpus has validation speakers


def test_recipe_data_refuses_a_recipe_that_would_train_on_a_held_out_actor(monkeypatch):
    sides = pd.DataFrame({"corpus": ["ravdess", "ravdess"], "actor": ["01", "02"], "side": ["train", "validation"]})
    data = pretrained.RecipeData(None, None, {}, sides)  # type: ignore[arg-type]
    monkeypatch.setattr(pretrained, "voice_data", lambda ctx, recipe: data)
    with pytest.raises(RuntimeError, match="ravdess-faces"):
        pretrained.recipe_data(None, RECIPES["voice"])  # type: ignore[arg-type]


def test_checkpoints_go_beside_the_bundle_not_inside_it(tmp_path):
    assert training_run.checkpoint_dir_for(tmp_path / "models" / "voice") == tmp_path / "models" / ".voice.training"


# ------------------------------------------------------------------------------------ shipped models
@pytest.mark.parametrize("name", list(RECIPES))
def test_the_committed_bundles_load_verify_and_predict(name):
    bundle = load_shipped(name)  # checksums verified, held-out actors checked
    assert bundle.config.modalities == RECIPES[name].config.modalities
    trained = RECIPES[name].head is None  # a fixed head (face, av) trains nothing and has no TFLite export
    assert read_manifest(bundle.path)["model"] == TRAINED_MODEL_FILE and ("int8" in bundle.exports) == trained
    assert not (bundle.path / trainer.CHECKPOINT).exists()
    for corpus, actors in HELD_OUT.items():
        assert set(actors) <= set(bundle.metadata["held_out"][corpus])
    sides = bundle_sides(bundle)
    voice_sides = {"train", "validation"} if trained or name == "av" else set()  # av holds the voice model
    wanted = voice_sides | (set() if trained else {"selection"})
    assert set(sides["side"]) == wanted and not (sides["corpus"] == "crema-d").any()
    data = random_clips(2, seed=0, audio_dim=bundle.config.audio_dim, video_dim=bundle.config.video_dim)
    probabilities = predict_data(bundle.model, data)
    assert probabilities.shape == (2, 6) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_a_changed_committed_bundle_is_refused(tmp_path):
    copy = tmp_path / "voice"
    shutil.copytree(PRETRAINED_DIR / "voice", copy)
    (copy / "normalisers.json").write_text((copy / "normalisers.json").read_text().replace("1", "2", 1))
    with pytest.raises(BundleError, match="normalisers.json does not match its checksum"):
        load_bundle(copy)


def test_the_shipped_models_fit_the_size_budget():
    sizes = {name: sum(f.stat().st_size for f in (PRETRAINED_DIR / name).iterdir()) for name in RECIPES}
    assert sum(sizes.values()) <= SHIPPED_LIMIT_BYTES, sizes


def test_the_model_card_shows_the_recorded_figures():
    card = (REPO_ROOT / "MODEL_CARD.md").read_text()
    block = card.split("<!-- pretrained-figures:start -->")[1].split("<!-- pretrained-figures:end -->")[0].strip()
    experiments = load_metrics(METRICS_PATH)["experiments"]
    assert block == figures_table(experiments)
    assert block.count("\n| ") == sum(len(modes) for model in CHECKS for _, _, modes in checked_sets(model))
    assert "| av | real_face_videos | audio + video | 50 |" in block
