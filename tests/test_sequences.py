"""Padding, masks, bucketing, validation of bad values, deterministic tf.data epochs."""

import numpy as np
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.sequences.data import (
    FeatureValueError,
    SequenceData,
    bucket_batches,
    fixed_window,
    pad_sequences,
    random_clips,
)


def test_pad_sequences_pads_to_longest_masks_padding_and_faceless_frames():
    a = np.ones((3, 2), np.float32)
    b = np.full((5, 2), 2.0, np.float32)
    face = np.array([True, False, True, True, True])
    padded, mask = pad_sequences([a, b], dim=2, masks=[None, face])
    assert padded.shape == (2, 5, 2)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]])
    np.testing.assert_array_equal(padded[0, 3:], 0.0)
    np.testing.assert_array_equal(padded[1, 1], 0.0)  # no face: the frame is zeroed as well as masked
    cut, cut_mask = pad_sequences([b], dim=2, length=4)
    assert cut.shape == (1, 4, 2) and cut_mask.sum() == 4


def test_bucket_batches_cover_every_clip_once_and_group_similar_lengths():
    lengths = np.random.default_rng(0).integers(10, 500, 103)
    batches = bucket_batches(lengths, 8, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    spans = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    for (_, high), (low, _) in zip(spans, spans[1:]):
        assert high <= low  # batches are contiguous runs of the sorted lengths
    again = bucket_batches(lengths, 8, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(batches, again))
    other = bucket_batches(lengths, 8, np.random.default_rng(2))
    assert not all(np.array_equal(x, y) for x, y in zip(batches, other))
    fixed = bucket_batches(lengths, 8)
    assert np.all(np.diff(np.concatenate([lengths[b] for b in fixed])) >= 0)


def test_nan_and_inf_are_rejected_naming_the_clip():
    good = np.zeros((4, 3), np.float32)
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(FeatureValueError, match=r"clip 1001_DFA_ANG_XX: audio .*NaN/inf.*frame 2, feature 1"):
        SequenceData([good, bad], [0, 1], ["1000_IEO_NEU_XX", "1001_DFA_ANG_XX"])
    video = np.zeros((2, 5), np.float32)
    video[1, 0] = np.inf
    with pytest.raises(FeatureValueError, match="clip faceclip: video"):
        SequenceData([good], [0], ["faceclip"], [video])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(audio=[np.zeros((0, 3))]), "non-empty"),
        (dict(audio=[np.zeros((4, 3)), np.zeros((4, 5))], labels=[0, 1], names=["a", "b"]), "5 features per frame"),
        (dict(labels=[7]), "label 7 outside"),
        (dict(video=[np.zeros((3, 2))], video_masks=[np.ones(4, bool)]), "video mask has 4 frames"),
        (dict(labels=[0, 1]), "1 audio arrays but 2 labels"),
    ],
)
def test_malformed_clips_are_rejected_with_the_reason(kwargs, message):
    args = dict(audio=[np.zeros((4, 3))], labels=[0], names=["a"], **{})
    args.update(kwargs)
    with pytest.raises(FeatureValueError, match=message):
        SequenceData(**args)


def test_batches_pad_to_their_own_longest_clip_and_mark_missing_video():
    data = random_clips(12, seed=0, audio_dim=3, video_dim=4)
    inputs, labels, weights = next(data.batches(4, seed=None))
    lengths = data.lengths()[np.argsort(data.lengths(), kind="stable")[:4]]
    assert inputs["audio"].shape == (4, lengths.max(), 3)
    np.testing.assert_array_equal(inputs["audio_mask"].sum(axis=1), lengths)
    assert labels.shape == (4, 6) and np.all(labels.sum(axis=1) == 1) and np.all(weights == 1)
    no_video = data.make_batch([0])  # every third clip of random_clips has no video
    assert no_video["video"].shape == (1, 1, 4) and no_video["video_mask"].sum() == 0
    audio_only = data.make_batch([0, 1], modalities=("audio",))
    assert set(audio_only) == {"audio", "audio_mask"}


def test_epochs_are_reproducible_from_seed_and_epoch_and_differ_between_epochs():
    data = random_clips(20, seed=1, audio_dim=3, video_dim=4)
    first = [b[1].argmax(1).tolist() for b in data.batches(4, seed=5, epoch=2)]
    again = [b[1].argmax(1).tolist() for b in data.batches(4, seed=5, epoch=2)]
    other = [b[1].argmax(1).tolist() for b in data.batches(4, seed=5, epoch=3)]
    assert first == again and first != other


def test_dataset_yields_the_same_batches_as_the_generator_with_class_weights():
    data = random_clips(10, seed=2, audio_dim=3, video_dim=4)
    weights = np.arange(1, 7, dtype=np.float32)
    expected = list(data.batches(4, seed=0, epoch=1, class_weights=weights))
    got = list(data.dataset(4, seed=0, epoch=1, class_weights=weights).as_numpy_iterator())
    assert len(got) == len(expected) == 3
    for (xi, yi, wi), (xe, ye, _) in zip(got, expected):
        assert set(xi) == set(xe)
        for key in xe:
            np.testing.assert_array_equal(xi[key], xe[key])
        np.testing.assert_array_equal(yi, ye)
        np.testing.assert_array_equal(wi, weights[ye.argmax(1)])


def test_fixed_window_cuts_and_pads_to_the_export_shape():
    data = random_clips(3, seed=3, audio_dim=3, video_dim=4, audio_frames=(30, 30), video_frames=(5, 5))
    window = fixed_window(data.make_batch([1]), audio_frames=20, video_frames=8)
    assert window["audio"].shape == (1, 20, 3) and window["audio_mask"].sum() == 20
    assert window["video"].shape == (1, 8, 4) and window["video_mask"][0, 5:].sum() == 0


def test_utterance_vectors_follow_their_clips_into_subsets_batches_datasets_and_windows():
    data = random_clips(7, seed=4, audio_dim=3, video_dim=4)
    utterance = np.arange(14, dtype=np.float32).reshape(7, 2)
    with_vectors = SequenceData(data.audio, data.labels, data.names, data.video, data.video_masks, utterance=utterance)
    assert with_vectors.utterance_dim == 2 and data.utterance_dim == 0
    part = with_vectors.subset([5, 1])
    np.testing.assert_array_equal(part.utterance, utterance[[5, 1]])
    batch = part.make_batch([1, 0], ("audio", "utterance"))
    assert set(batch) == {"audio", "audio_mask", "utterance"}
    np.testing.assert_array_equal(batch["utterance"], utterance[[1, 5]])
    assert "utterance" not in with_vectors.make_batch([0])  # only when the model asks for it
    for inputs, labels, _ in with_vectors.dataset(3, ("audio", "utterance"), seed=0).as_numpy_iterator():
        rows = [int(np.flatnonzero((utterance == row).all(1))[0]) for row in inputs["utterance"]]
        np.testing.assert_array_equal(labels.argmax(1), with_vectors.labels[rows])
    window = fixed_window(part.make_batch([0], ("audio", "utterance")), audio_frames=10, video_frames=2)
    np.testing.assert_array_equal(window["utterance"], utterance[[5]])
    with pytest.raises(FeatureValueError, match="these clips have no utterance vectors"):
        data.make_batch([0], ("audio", "utterance"))


def test_concatenated_clips_keep_their_order_inputs_and_labels():
    data = random_clips(7, seed=4, audio_dim=3, video_dim=4)
    utterance = np.arange(14, dtype=np.float32).reshape(7, 2)
    full = SequenceData(data.audio, data.labels, data.names, data.video, data.video_masks, 4, utterance=utterance)
    both = SequenceData.concatenate(full.subset([0, 1, 2]), full.subset([3, 4, 5, 6]))
    assert both.names == full.names and both.labels.tolist() == full.labels.tolist()
    np.testing.assert_array_equal(both.utterance, utterance)
    np.testing.assert_array_equal(both.make_batch(range(7))["video"], full.make_batch(range(7))["video"])
    with pytest.raises(ValueError, match="same inputs"):
        SequenceData.concatenate(full.subset([0]), data.subset([1]))


def test_bad_utterance_vectors_are_rejected_naming_the_clip():
    data = random_clips(3, seed=5, audio_dim=3, video_dim=4)
    poisoned = np.zeros((3, 2), np.float32)
    poisoned[1, 0] = np.nan
    with pytest.raises(FeatureValueError, match=f"clip {data.names[1]}: utterance features contain 1 NaN"):
        SequenceData(data.audio, data.labels, data.names, utterance=poisoned)
    with pytest.raises(FeatureValueError, match=r"must be a \(3 clips, features\) array, got shape \(2, 2\)"):
        SequenceData(data.audio, data.labels, data.names, utterance=np.zeros((2, 2)))


def _clips_and_features():
    """Six clips of four actors, the last without cached features; odd clips have no video."""
    import pandas as pd

    from emotion_lib.features.store import ClipFeatures

    rng = np.random.default_rng(0)
    clips = pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(6)],
            "actor": ["1", "1", "2", "2", "3", "4"],
            "emotion": ["anger", "fear", "neutral", "sadness", "happiness", "disgust"],
            "split": ["train", "train", "train", "train", "validation", "test"],
        }
    )
    features = {
        f"c{i}": ClipFeatures(
            rng.normal(5.0, 2.0, (10 + i, 3)).astype(np.float32),
            None if i % 2 else rng.normal(size=(4, 2)).astype(np.float32),
            None if i % 2 else np.array([True, True, False, True]),
        )
        for i in range(5)
    }  # c5 has no features (failed extraction): left out
    return clips, features


def test_split_sequences_normalises_with_training_statistics_only():
    from emotion_lib.sequences.corpus import split_sequences

    clips, features = _clips_and_features()
    splits, states = split_sequences(clips, features)
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "validation": 1}
    train_audio = np.concatenate(splits["train"].audio)
    np.testing.assert_allclose(train_audio.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_audio.std(0), 1.0, atol=1e-4)
    raw_train = np.concatenate([features[f"c{i}"].audio for i in range(4)])
    expected_val = (features["c4"].audio - raw_train.mean(0)) / raw_train.std(0)
    np.testing.assert_allclose(splits["validation"].audio[0], expected_val, rtol=1e-4, atol=1e-4)
    assert splits["train"].labels.tolist() == [0, 2, 4, 5] and set(states) == {"audio", "video"}
    np.testing.assert_array_equal(splits["train"].video[0][2], 0.0)  # faceless frame stays zero


def test_corpus_sequences_describe_splits_widths_faces_and_test_actors():
    from emotion_lib.features.store import ExtractionConfig
    from emotion_lib.sequences.corpus import CorpusSequences, split_sequences

    clips, features = _clips_and_features()
    splits, states = split_sequences(clips, features)
    sequences = CorpusSequences("synthetic", clips, splits, states, ExtractionConfig())
    assert sequences.test_actors == ["4"]
    assert CorpusSequences("savee", clips[clips["clip_id"] != "c5"], splits, states, None).test_actors == []
    assert sequences.describe() == (
        "{'train': 4, 'validation': 1} clips per split; audio 3-d, video 2-d; 50% of training clips have a face; "
        "test actors: 4\ncorpus = synthetic: every number below is synthetic (not emotion-recognition accuracy)"
    )
