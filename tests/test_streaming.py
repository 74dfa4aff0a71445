"""Sequences streamed from the feature cache: the same clips, statistics, batches and trained model as in memory;
bad entries met while streaming are named."""

import numpy as np
import pandas as pd
import pytest

import emotion_lib  # noqa: F401  (opensmile before tensorflow)
from emotion_lib.features.cache import CacheEntryError, write_entry
from emotion_lib.features.normalise import Normaliser, StreamingFit
from emotion_lib.features.store import ExtractionConfig, load_features
from emotion_lib.labels import EMOTIONS
from emotion_lib.sequences.augment import FeatureAugmenter
from emotion_lib.sequences.corpus import split_sequences
from emotion_lib.sequences.data import FeatureValueError, random_clips
from emotion_lib.sequences.stream import CachedSequenceData, stream_split_sequences

CONFIG = ExtractionConfig()
SPLIT_OF_ACTOR = {"1": "train", "2": "train", "3": "train", "4": "validation", "5": "test"}
KEYS = ("audio", "audio_mask", "video", "video_mask")


def _entry(audio: np.ndarray, video: np.ndarray | None, mask: np.ndarray | None) -> dict:
    arrays = {"audio": audio}
    if video is not None:
        arrays.update(video=video, video_mask=mask, video_times=np.arange(len(video)) / 5.0)
    return arrays


def write_cache(cache, n: int = 36, seed: int = 0) -> pd.DataFrame:
    """``n`` clips of five actors in the cache's real format (raw, unnormalised features: not centred, not unit
    variance), plus one clip without audio frames, one never extracted and one corrupt entry; the clip table."""
    data = random_clips(n, seed=seed, audio_dim=5, video_dim=4, audio_frames=(15, 45), video_frames=(3, 9))
    rng = np.random.default_rng(seed)
    rows = []
    for i, (name, label) in enumerate(zip(data.names, data.labels)):
        actor = str(1 + i % 5)
        rows.append({"clip_id": name, "corpus": "synthetic", "actor": actor, "emotion": EMOTIONS[label]})
        video = None if data.video[i] is None else data.video[i] * 3.0 + float(actor)
        raw = _entry(data.audio[i] * (1.0 + int(actor)) + 10.0 * int(actor), video, data.video_masks[i])
        write_entry(CONFIG.clip_path(cache, rows[-1]), raw)
    extra = {"corpus": "synthetic", "actor": "2", "emotion": "anger"}
    silent = {**extra, "clip_id": "no_audio"}
    video = rng.normal(size=(4, 4)).astype(np.float32)
    write_entry(
        CONFIG.clip_path(cache, silent),
        {**_entry(np.zeros((0, 5), np.float32), video, np.ones(4, bool)), "audio_missing": np.array(True)},
    )
    corrupt = {**extra, "clip_id": "corrupt"}
    CONFIG.clip_path(cache, corrupt).write_bytes(b"not an npz")
    rows += [silent, {**extra, "clip_id": "never_extracted"}, corrupt]
    clips = pd.DataFrame(rows)
    return clips.assign(split=clips["actor"].map(SPLIT_OF_ACTOR))


def in_memory(clips: pd.DataFrame, cache, normalise: str | None = "global"):
    """What ``load_corpus_sequences`` does without ``stream``, from a clip table."""
    with pytest.warns(UserWarning, match="skipped 1 cached entry"):
        features = load_features(clips, CONFIG, cache, missing="skip")
    return split_sequences(clips, {k: f for k, f in features.items() if len(f.audio)}, normalise)


def streamed(clips: pd.DataFrame, cache, normalise: str | None = "global", normalisers=None):
    with pytest.warns(UserWarning, match="skipped 1 cached entry.*corrupt.npz"):
        return stream_split_sequences(clips, CONFIG, cache, normalise, normalisers=normalisers)


def assert_same_states(a: dict, b: dict, rtol: float = 1e-12) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name]["mode"] == b[name]["mode"] and list(a[name]["speakers"]) == list(b[name]["speakers"])
        np.testing.assert_allclose(a[name]["mean"], b[name]["mean"], rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(a[name]["std"], b[name]["std"], rtol=rtol)
        for speaker, (mean, std) in a[name]["speakers"].items():
            np.testing.assert_allclose(mean, b[name]["speakers"][speaker][0], rtol=rtol, atol=1e-12)
            np.testing.assert_allclose(std, b[name]["speakers"][speaker][1], rtol=rtol)


def assert_same_batches(a, b, exact: bool = True, **options) -> int:
    count = 0
    for (inputs_a, labels_a, weights_a), (inputs_b, labels_b, weights_b) in zip(
        a.batches(8, **options), b.batches(8, **options), strict=True
    ):
        assert set(inputs_a) == set(inputs_b) == set(KEYS)
        for key in KEYS:
            if exact:
                np.testing.assert_array_equal(inputs_a[key], inputs_b[key], err_msg=key)
            else:
                np.testing.assert_allclose(inputs_a[key], inputs_b[key], rtol=1e-5, atol=1e-5, err_msg=key)
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_array_equal(weights_a, weights_b)
        count += 1
    return count


@pytest.mark.parametrize("mode", ["global", "speaker"])
def test_streaming_fit_gives_the_statistics_of_fit_up_to_rounding(mode):
    rng = np.random.default_rng(1)
    sequences = [rng.normal(5.0 * i, 1.0 + i, (rng.integers(1, 30), 3)) for i in range(12)]
    masks = [None if i % 3 else rng.random(len(x)) > 0.3 for i, x in enumerate(sequences)]
    masks[0] = np.ones(len(sequences[0]), bool)
    speakers = [f"s{i % 4}" for i in range(12)]
    fit = StreamingFit(mode)
    for x, speaker, mask in zip(sequences, speakers, masks):
        fit.add(x.astype(np.float32), speaker, mask)
    expected = Normaliser(mode).fit([x.astype(np.float32) for x in sequences], speakers, masks).state()
    assert_same_states({"x": fit.normaliser().state()}, {"x": expected})
    with pytest.raises(ValueError, match="zero sequences"):
        StreamingFit().normaliser()
    with pytest.raises(ValueError, match="one speaker id per sequence"):
        StreamingFit("speaker").add(sequences[0])


@pytest.mark.parametrize("mode", ["global", "speaker", None])
def test_streamed_splits_hold_the_clips_statistics_and_facts_of_the_in_memory_ones(tmp_path, mode):
    clips = write_cache(tmp_path)
    memory, memory_states = in_memory(clips, tmp_path, mode)
    stream, stream_states = streamed(clips, tmp_path, mode)
    assert list(stream) == list(memory) == ["train", "validation", "test"]
    assert_same_states(stream_states, memory_states)
    assert bool(memory_states) == (mode is not None)
    for split in memory:
        a, b = memory[split], stream[split]
        assert isinstance(b, CachedSequenceData) and len(a) == len(b) > 0
        assert a.names == b.names and "no_audio" not in b.names and "corrupt" not in b.names
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.lengths(), b.lengths())
        np.testing.assert_array_equal(a.has_video(), b.has_video())
        assert a.shapes() == b.shapes() and (a.audio_dim, a.video_dim) == (b.audio_dim, b.video_dim) == (5, 4)
        for i in range(len(a)):
            for x, y in zip(a.clip(i), b.clip(i)):
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5) if x is not None else None
                assert (x is None) == (y is None)


def test_streamed_batches_equal_in_memory_batches_in_order_padding_masks_and_normalisation(tmp_path):
    clips = write_cache(tmp_path)
    memory, states = in_memory(clips, tmp_path)
    same, _ = streamed(clips, tmp_path, normalisers=states)
    own, _ = streamed(clips, tmp_path)
    train = {"seed": 3, "epoch": 1, "augment": FeatureAugmenter(0.1, (0.8, 1.2), (0.8, 1.2), 0.5)}
    weights = {"class_weights": np.linspace(0.5, 2.0, 6)}
    for split in memory:
        assert assert_same_batches(memory[split], same[split], **train, **weights) >= 1
        assert_same_batches(memory[split], same[split])  # evaluation order, no augmentation
        assert_same_batches(memory[split], own[split], exact=False, **train)
    subset = [4, 0, 7]
    assert_same_batches(memory["train"].subset(subset), same["train"].subset(subset), **train)
    assert same["train"].make_batch([2, 5], ("audio",)).keys() == {"audio", "audio_mask"}


def test_an_entry_that_goes_bad_while_streaming_is_named(tmp_path):
    clips = write_cache(tmp_path)
    stream, _ = streamed(clips, tmp_path)
    train = stream["train"]
    train.validate()
    path = CONFIG.clip_path(tmp_path, clips.iloc[0])
    assert train.clips[0].path == path
    path.write_bytes(path.read_bytes()[:200])  # truncated after the scan
    with pytest.raises(CacheEntryError, match=rf"{path}: unreadable"):
        list(train.batches(8))
    write_entry(path, _entry(np.zeros((3, 5), np.float32), None, None))  # verifies, but is not the scanned clip
    with pytest.raises(CacheEntryError, match=rf"{path}: clip {train.names[0]}'s arrays changed shape"):
        train.make_batch([0])
    path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{path}: the cache entry of clip {train.names[0]} is gone"):
        train.validate()


def test_bad_values_are_refused_when_scanned_naming_the_clip(tmp_path):
    clips = write_cache(tmp_path)
    record = clips.iloc[3]
    audio = np.ones((6, 5), np.float32)
    audio[2, 1] = np.nan
    write_entry(CONFIG.clip_path(tmp_path, record), _entry(audio, None, None))
    with pytest.raises(FeatureValueError, match=f"clip {record['clip_id']}: audio features contain 1 NaN"):
        stream_split_sequences(clips, CONFIG, tmp_path)
    with pytest.raises(ValueError, match="none of the clips has cached features"):
        stream_split_sequences(clips.assign(clip_id=clips["clip_id"] + "_x"), CONFIG, tmp_path)


def test_training_on_a_stream_gives_the_model_and_metrics_of_training_in_memory(tmp_path):
    from emotion_lib.models.config import ModelConfig
    from emotion_lib.training.trainer import predict_data, train

    clips = write_cache(tmp_path / "cache")
    memory, states = in_memory(clips, tmp_path / "cache")
    same, _ = streamed(clips, tmp_path / "cache", normalisers=states)
    own, _ = streamed(clips, tmp_path / "cache")
    config = ModelConfig(
        audio_dim=5, video_dim=4, conv_filters=6, rnn_units=4, video_rnn_units=4, attention_units=4,
        dense_units=8, batch_size=8, epochs=2, encoder="transformer", transformer_ff=8,
    )  # fmt: skip
    runs = {
        name: train(config, data["train"], data["validation"], tmp_path / name, progress=False,
                    tensorboard_dir=tmp_path / "tb" / name)
        for name, data in (("memory", memory), ("same", same), ("own", own))
    }  # fmt: skip
    reference = runs["memory"]
    assert reference.history["loss"] == runs["same"].history["loss"]
    assert reference.history["val_loss"] == runs["same"].history["val_loss"]
    for a, b in zip(reference.model.weights, runs["same"].model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(runs["own"].history[key], reference.history[key], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        predict_data(runs["own"].model, own["test"]), predict_data(reference.model, memory["test"]), atol=1e-4
    )


def test_load_corpus_sequences_streams_the_clips_it_would_hold_and_extracts_absent_ones(monkeypatch, tmp_path):
    from emotion_lib.data import corpora, splits
    from emotion_lib.features import store
    from emotion_lib.sequences.corpus import load_corpus_sequences

    clips = write_cache(tmp_path)
    extracted = []

    def extract(table, config, cache_dir):
        for record in table.to_dict("records"):
            if not config.clip_path(cache_dir, record).exists():
                extracted.append(record["clip_id"])
                write_entry(config.clip_path(cache_dir, record), _entry(np.ones((7, 5), np.float32), None, None))
        return "extracted"

    monkeypatch.setattr(corpora, "load_corpus", lambda corpus, folder: (clips.drop(columns="split"), None))
    monkeypatch.setattr(splits, "attach_splits", lambda table, seed: table.assign(split=clips["split"]))
    monkeypatch.setattr(store, "extract_features", extract)
    options = dict(extraction=CONFIG, cache_dir=tmp_path, extract_missing=True)
    with pytest.warns(UserWarning, match="corrupt.npz"):
        table, stream, states = load_corpus_sequences("savee", str(tmp_path), stream=True, **options)
    assert extracted == ["never_extracted"] and isinstance(stream["train"], CachedSequenceData)
    with pytest.warns(UserWarning, match="corrupt.npz"):
        memory_table, memory, memory_states = load_corpus_sequences("savee", str(tmp_path), **options)
    assert extracted == ["never_extracted"]  # the cache is complete (but for the corrupt entry): nothing more
    assert table.equals(memory_table) and "never_extracted" in table["clip_id"].tolist()
    assert {k: v.names for k, v in stream.items()} == {k: v.names for k, v in memory.items()}
    assert_same_states(states, memory_states)
