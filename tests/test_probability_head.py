"""The zero-shot FER2013 head, the late fusion of two models, and the shipped face / av bundles built from them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.experiments.face_zero_shot import CANDIDATES, pooled_log_probabilities
from emotion_lib.experiments.pretrained import RECIPES, replace_recipe, validate_recipe
from emotion_lib.experiments.pretrained_eval import load_shipped
from emotion_lib.experiments.registry import EXPERIMENTS, experiment
from emotion_lib.features.faces.fer import FER2013_CLASSES, FER2013_TRAINING_IMAGES
from emotion_lib.features.store import ExtractionConfig
from emotion_lib.labels import EMOTIONS
from emotion_lib.models.late_fusion import build_late_fusion
from emotion_lib.models.probability_head import ProbabilityHead, build_probability_head, class_map
from emotion_lib.paths import PRETRAINED_DIR
from emotion_lib.training.bundle import load_bundle, save_bundle

RNG = np.random.default_rng(0)


def frames(n: int) -> np.ndarray:
    """``n`` random FER2013 probability vectors."""
    return RNG.dirichlet(np.ones(len(FER2013_CLASSES)), size=n).astype(np.float32)


def renormalised(p: np.ndarray, surprise: str | None = None) -> np.ndarray:
    """The six-class answer written out by hand: surprise dropped (or added to ``surprise``), the rest renormalised."""
    source = dict(zip(FER2013_CLASSES, p))
    six = np.array([source[name] for name in ("angry", "disgust", "fear", "happy", "neutral", "sad")])
    if surprise is not None:
        six[EMOTIONS.index(surprise)] += source["surprise"]
    return six / six.sum()


def test_the_class_map_sends_each_fer_class_to_its_emotion_and_drops_surprise():
    matrix = class_map()
    assert matrix.shape == (7, 6) and matrix.sum() == 6 and (matrix.sum(axis=0) == 1).all()
    assert not matrix[FER2013_CLASSES.index("surprise")].any()
    assert matrix[FER2013_CLASSES.index("happy"), EMOTIONS.index("happiness")] == 1
    assert matrix[FER2013_CLASSES.index("neutral"), EMOTIONS.index("neutral")] == 1
    with pytest.raises(ValueError, match="no target given"):
        class_map(("angry", "calm"), {"angry": "anger"})
    with pytest.raises(ValueError, match="no source class maps to"):
        class_map(("angry",), {"angry": "anger"})


def test_mean_probability_head_is_the_renormalised_mean_of_the_face_frames():
    clip = frames(5)
    mask = np.array([1, 1, 0, 1, 1], bool)
    head = ProbabilityHead("mean_probability")
    got = head.predict([(clip, mask)])[0]
    assert np.allclose(got, renormalised(clip[mask].mean(axis=0)), atol=1e-5)
    assert EMOTIONS[int(got.argmax())] == EMOTIONS[int(renormalised(clip[mask].mean(axis=0)).argmax())]


def test_mean_log_probability_head_is_the_renormalised_geometric_mean_and_ignores_padding():
    clip = frames(4)
    head = ProbabilityHead("mean_log_probability")
    geometric = np.exp(np.log(clip).mean(axis=0))
    short, padded = head.predict([(clip, None)])[0], head.predict([(clip, None), (frames(9), None)])[0]
    assert np.allclose(short, renormalised(geometric), atol=1e-5) and np.allclose(short, padded, atol=1e-6)


def test_surprise_counted_as_fear_only_moves_the_fear_score():
    p = np.array([[0.1, 0.05, 0.1, 0.05, 0.1, 0.5, 0.1]], np.float32)
    dropped, as_fear = (ProbabilityHead("mean_probability", s).predict([(p, None)])[0] for s in (None, "fear"))
    assert EMOTIONS[int(as_fear.argmax())] == "fear" and EMOTIONS[int(dropped.argmax())] != "fear"
    assert np.allclose(as_fear, renormalised(p[0], "fear"), atol=1e-5)
    assert np.allclose(np.delete(as_fear, EMOTIONS.index("fear")), np.delete(dropped, EMOTIONS.index("fear")) / 2)


def test_a_balanced_head_divides_each_class_by_its_share_of_the_training_images():
    p = frames(3)
    shares = np.array([FER2013_TRAINING_IMAGES[name] for name in FER2013_CLASSES], np.float64)
    by_hand = renormalised(p.mean(axis=0) / shares)
    got = ProbabilityHead("mean_probability", balanced=True).predict([(p, None)])[0]
    assert np.allclose(got, by_hand, atol=1e-5)
    # disgust, 1.5 % of the training images, wins over happy (25 %) at a ninth of its probability
    tied = np.array([[0.02, 0.05, 0.02, 0.47, 0.02, 0.02, 0.40]], np.float32)
    plain, balanced = (
        ProbabilityHead("mean_probability", balanced=b).predict([(tied, None)])[0] for b in (False, True)
    )
    assert EMOTIONS[int(plain.argmax())] == "happiness" and EMOTIONS[int(balanced.argmax())] == "disgust"
    assert ProbabilityHead("mean_log_probability", "fear", True).name == "mean_log_probability/surprise_fear/balanced"


def test_a_clip_without_a_face_gets_equal_scores_and_bad_options_are_refused():
    assert np.allclose(ProbabilityHead().predict([(frames(3), np.zeros(3, bool))]), 1 / 6, atol=1e-6)
    with pytest.raises(ValueError, match="pooling must be one of"):
        ProbabilityHead("max")
    with pytest.raises(ValueError, match="surprise must be None or one of"):
        ProbabilityHead(surprise="surprise")
    with pytest.raises(ValueError, match="non-negative"):
        build_probability_head(np.ones((7, 5)))


def test_the_fitted_diagnostic_pools_like_the_head():
    clip, mask = frames(6), np.array([1, 0, 1, 1, 0, 1], bool)
    for pooling in ("mean_probability", "mean_log_probability"):
        pooled = pooled_log_probabilities([(clip, mask)], pooling)[0]
        scores = np.exp(pooled @ class_map())
        assert np.allclose(ProbabilityHead(pooling).predict([(clip, mask)])[0], scores / scores.sum(), atol=1e-5)


def test_a_head_bundle_saves_and_loads_with_the_same_answers(tmp_path):
    head = ProbabilityHead("mean_probability")
    recipe = RECIPES["face"]
    save_bundle(tmp_path / "head", head.build(), recipe.config, {}, recipe.extraction)
    bundle = load_bundle(tmp_path / "head")
    clip = frames(7)[None]
    inputs = {"video": clip, "video_mask": np.ones((1, 7), np.float32)}
    assert np.allclose(np.asarray(bundle.model(inputs)), head.predict([(clip[0], None)]), atol=1e-6)


def test_late_fusion_is_the_weighted_product_or_the_one_model_present():
    audio_head, video_head = build_probability_head(class_map(), "mean_log_probability"), ProbabilityHead().build()
    audio_model = _as_audio(audio_head)
    fused = build_late_fusion(audio_model, video_head, audio_weight=0.25)
    a, v = frames(3)[None], frames(4)[None]
    ones = {"audio_mask": np.ones((1, 3), np.float32), "video_mask": np.ones((1, 4), np.float32)}
    p_a = np.asarray(audio_model({"audio": a, "audio_mask": ones["audio_mask"]}))[0]
    p_v = np.asarray(video_head({"video": v, "video_mask": ones["video_mask"]}))[0]
    both = np.asarray(fused({"audio": a, "video": v, **ones}))[0]
    product = p_a**0.25 * p_v**0.75
    assert np.allclose(both, product / product.sum(), atol=1e-5)
    no_face = np.asarray(fused({"audio": a, "video": v, **ones, "video_mask": np.zeros((1, 4), np.float32)}))[0]
    no_voice = np.asarray(fused({"audio": a, "video": v, **ones, "audio_mask": np.zeros((1, 3), np.float32)}))[0]
    assert np.allclose(no_face, p_a, atol=1e-5) and np.allclose(no_voice, p_v, atol=1e-5)
    with pytest.raises(ValueError, match="audio_weight"):
        build_late_fusion(audio_model, video_head, audio_weight=1.0)


def _as_audio(model):
    """A copy of a video-input head that reads inputs named ``audio`` / ``audio_mask`` (a stand-in voice model)."""
    import keras

    audio, mask = keras.Input((None, 7), name="audio"), keras.Input((None,), name="audio_mask")
    return keras.Model({"audio": audio, "audio_mask": mask}, model({"video": audio, "video_mask": mask}))


def test_a_head_recipe_must_read_probabilities_and_an_av_head_needs_its_audio_model():
    for name in RECIPES:
        validate_recipe(name, RECIPES[name])
    features = ExtractionConfig(video_backend="fer", backend_options={"output": "features"})
    with pytest.raises(ValueError, match="output='probabilities'"):
        validate_recipe("face", replace_recipe("face", extraction=features))
    with pytest.raises(ValueError, match="audio_expert"):
        validate_recipe("av", replace_recipe("av", audio_expert=None))
    assert RECIPES["face"].head in CANDIDATES.values() and RECIPES["av"].head == RECIPES["face"].head


@pytest.mark.parametrize("name", ["face", "av"])
def test_the_shipped_bundles_are_their_recipes(name):
    bundle = load_shipped(name)
    head = RECIPES[name].head
    assert bundle.config.extra["probability_head"] == dataclasses.asdict(head)
    assert bundle.metadata["head"] == head.name and bundle.extraction == RECIPES[name].extraction
    clip = frames(5)[None]
    inputs = {"video": clip, "video_mask": np.ones((1, 5), np.float32)}
    if name == "av":  # the voice masked: the face head alone
        inputs |= {"audio": np.zeros((1, 1, bundle.config.audio_dim), np.float32), "audio_mask": np.zeros((1, 1))}
        assert bundle.metadata["audio_model"]["audio_weight"] == RECIPES["av"].audio_weight
        voice = load_bundle(PRETRAINED_DIR / "voice")
        assert bundle.normalisers["audio"].state() == voice.normalisers["audio"].state()
    assert np.allclose(np.asarray(bundle.model(inputs)), head.predict([(clip[0], None)]), atol=1e-5)


def test_the_experiment_runs_by_name():
    assert EXPERIMENTS["face_zero_shot"].endswith(":run_face_zero_shot")
    assert callable(experiment("face_zero_shot"))
