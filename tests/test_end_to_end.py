"""The end-to-end check on real faces and voices: pairing, masks, no test actor in training, the quick run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib import paths
from emotion_lib.evaluation.records import load_metrics
from emotion_lib.experiments.common import Context
from emotion_lib.experiments.end_to_end import recorded_clips, run_end_to_end
from emotion_lib.experiments.end_to_end_data import (
    INPUT_MODES,
    TRAIN_ACTORS,
    assert_unseen,
    clip_inputs,
    load_av_clips,
    training_data,
)
from emotion_lib.features.normalise import Normaliser
from emotion_lib.features.store import ClipFeatures
from emotion_lib.labels import EMOTIONS
from emotion_lib.sequences.pairing import PartialSequenceData, pair_by_class, split_frames


def test_pair_by_class_matches_classes_uses_faces_evenly_and_draws_any_face_for_a_class_without_faces():
    voice_labels = np.array([0] * 7 + [4] * 50)
    face_labels = np.array([0, 0, 0, 1, 2])
    chosen = pair_by_class(voice_labels, face_labels, np.random.default_rng(0))
    assert (face_labels[chosen[:7]] == 0).all()
    assert sorted(np.bincount(chosen[:7], minlength=3)[:3]) == [2, 2, 3]  # dealt in rounds
    assert set(chosen[7:]) == set(range(5))  # neutral (no CK+ face) pairs with faces of every class
    again = pair_by_class(voice_labels, face_labels, np.random.default_rng(0))
    np.testing.assert_array_equal(chosen, again)
    with pytest.raises(ValueError, match="no face"):
        pair_by_class(voice_labels, np.array([], int), np.random.default_rng(0))


def test_split_frames_zeroes_and_masks_faceless_frames():
    rows = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0], [5.0, 6.0]])
    (first, first_mask), (second, second_mask) = split_frames(rows, [3, 1])
    np.testing.assert_array_equal(first_mask, [True, False, True])
    np.testing.assert_array_equal(first[1], 0.0)
    np.testing.assert_array_equal(second, [[5.0, 6.0]])
    assert second_mask.all()


def test_partial_data_masks_missing_audio_and_faceless_frames_in_batches():
    audio = [np.ones((4, 3), np.float32), np.full((1, 3), 7.0, np.float32)]
    video = [np.ones((3, 2), np.float32), np.ones((2, 2), np.float32)]
    masks = [np.array([True, False, True]), np.array([True, True])]
    data = PartialSequenceData(audio, [0, 1], ["pair", "face"], video, masks, 2, audio_present=[True, False])
    batch = data.make_batch([0, 1])
    np.testing.assert_array_equal(batch["audio_mask"], [[1, 1, 1, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(batch["audio"][1], 0.0)
    np.testing.assert_array_equal(batch["video_mask"], [[1, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(batch["video"][0, 1], 0.0)
    part = data.subset([1])
    assert isinstance(part, PartialSequenceData) and not part.audio_present.any()


def test_clip_inputs_mask_the_left_out_modality_and_faceless_frames():
    clips = pd.DataFrame({"clip_id": ["a"], "emotion": ["anger"]})
    video = np.ones((3, 128), np.float32)
    features = {"a": ClipFeatures(np.ones((10, 25), np.float32), video, np.array([True, False, True]))}
    audio_norm = Normaliser().fit([np.zeros((2, 25)), np.ones((2, 25))])
    video_norm = Normaliser().fit([np.zeros((2, 128)), np.full((2, 128), 2.0)])
    both = clip_inputs(clips, features, audio_norm, video_norm, "audio_video").make_batch([0])
    np.testing.assert_array_equal(both["video_mask"], [[1, 0, 1]])
    np.testing.assert_array_equal(both["video"][0, 1], 0.0)
    assert both["audio_mask"].all()
    audio_only = clip_inputs(clips, features, audio_norm, video_norm, "audio").make_batch([0])
    assert not audio_only["video_mask"].any() and audio_only["audio_mask"].all()
    video_only = clip_inputs(clips, features, audio_norm, video_norm, "video").make_batch([0])
    assert not video_only["audio_mask"].any() and not video_only["audio"].any()
    np.testing.assert_array_equal(video_only["video_mask"], [[1, 0, 1]])


def test_assert_unseen_rejects_a_test_actor_among_the_training_speakers():
    clips = pd.DataFrame({"corpus": ["ravdess-faces", "crema-d"], "actor": ["01", "1001"]})
    assert_unseen(pd.DataFrame({"corpus": ["ravdess", "ckplus"], "actor": ["02", "S005"]}), clips)
    with pytest.raises(RuntimeError, match="01"):
        assert_unseen(pd.DataFrame({"corpus": ["ravdess"], "actor": ["01"]}), clips)


# ------------------------------------------------------------------------------------- on the real clips
@pytest.fixture(scope="module")
def quick_run(shared_data, real_feature_cache, tmp_path_factory):
    """The quick end-to-end run (a handful of clips, 1 epoch) with the session's real-clip feature cache (empty
    before the first run of the session) and a fresh metrics file and reports folder."""
    root = tmp_path_factory.mktemp("end_to_end")
    ctx = Context(data_dir=shared_data, cache_dir=real_feature_cache, metrics_path=root / "metrics.json", quick=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "REPORTS_DIR", root / "reports")
        rows = run_end_to_end(ctx)
    return ctx, rows, root


def test_training_speakers_exclude_the_test_actors_and_sides_are_disjoint(quick_run):
    ctx, _, _ = quick_run
    data = training_data(ctx)
    sides = data.sides
    voices = sides[sides["corpus"] == "ravdess"]
    assert "01" not in set(voices["actor"]) and set(voices["actor"]) <= set(TRAIN_ACTORS)
    assert sides.groupby(["corpus", "actor"])["side"].nunique().max() == 1
    assert set(sides["side"]) == {"train", "validation"}
    assert {"ravdess", "ckplus"} <= set(sides.loc[sides["side"] == "validation", "corpus"])
    clips = load_av_clips(ctx.data_dir, quick=True)
    assert_unseen(sides, clips)
    names = set(data.train.names)
    assert all(name.split(":", 1)[0] in ("pair", "face") for name in names)
    assert not data.train.audio_present[[n.startswith("face:") for n in data.train.names]].any()


def test_quick_run_records_every_clip_with_prediction_confidence_and_face_fraction(quick_run):
    ctx, rows, root = quick_run
    clips = load_av_clips(ctx.data_dir, quick=True)
    records = {k: v for k, v in load_metrics(ctx.metrics_path)["experiments"].items() if k.startswith("end_to_end/")}
    assert len(records) == len(rows) == 6
    for name, record in records.items():
        assert "END-TO-END CHECK" in record["description"] and "not a benchmark" in record["description"]
        assert record["description"].startswith("SMOKE RUN")
        table = pd.DataFrame(records[record["extra"].get("clips_in", name)]["extra"]["clips"])
        assert set(table["clip_id"]) == set(clips.loc[clips["corpus"] == record["corpus"], "clip_id"])
        assert record["pooled"]["n"] == len(table) == record["extra"]["n_clips"]
        for mode in INPUT_MODES:
            assert set(table[f"predicted_{mode}"]) <= set(EMOTIONS)
            assert table[f"confidence_{mode}"].between(1 / len(EMOTIONS) - 1e-3, 1).all()
        assert table["face_fraction"].between(0, 1).all() and (table["video_frames"] > 0).all()
    crema = pd.DataFrame(records["end_to_end/crema_d_1001/audio_video"]["extra"]["clips"])
    assert "perceived_audiovisual" in crema
    assert sorted(recorded_clips(ctx.metrics_path)["clip_id"]) == sorted(clips["clip_id"])
    figures = root / "reports" / "figures"  # a smoke run's figure never replaces the real run's
    assert (figures / "05_end_to_end_confusion_smoke.png").is_file()
    assert not (figures / "05_end_to_end_confusion.png").exists()
