"""The pipeline at CREMA-D scale: the CREMA-D-sized synthetic corpus, Dask on a real two-process LocalCluster
reached by its scheduler address, and a generated corpus with bad files whose rerun touches only what is missing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_features_store import EMBEDDING_ATOL, assert_same_features

from emotion_lib.data.corpora import load_corpus
from emotion_lib.data.synthetic import CREMA_D_PLAN, _clip_plan, generate_corpus, make_actors
from emotion_lib.features.store import ExtractionConfig, clip_dir, extract_features, load_features
from emotion_lib.paths import REPO_ROOT

DLIB_1FPS = ExtractionConfig(video_backend="dlib", fps=1.0)


def digests(root: Path, pattern: str = "AudioWAV/*.wav") -> dict[str, str]:
    return {path.name: hashlib.sha1(path.read_bytes()).hexdigest() for path in sorted(root.glob(pattern))}


def test_crema_d_layout_has_crema_d_size_and_every_prefix_is_the_same_corpus(tmp_path):
    assert len(CREMA_D_PLAN) == len(set(CREMA_D_PLAN)) == 82
    plan = list(_clip_plan(make_actors(91, 0), 1, "crema-d", np.random.default_rng(1)))
    names = {f"{actor.actor_id}_{sentence}_{emotion}_{level}" for actor, emotion, sentence, level in plan}
    assert len(plan) == len(names) == 91 * 82 == 7462  # unique CREMA-D names; max_clips=7442 keeps 7,442 of them
    assert len({actor.actor_id for actor, *_ in plan[:91]}) == 91  # the first round covers every actor
    assert len({emotion for _, emotion, *_ in plan[:91]}) == 6  # and every emotion
    small = generate_corpus(tmp_path / "small", n_actors=3, layout="crema-d", max_clips=4, workers=1, progress=False)
    large = generate_corpus(tmp_path / "large", n_actors=3, layout="crema-d", max_clips=7, workers=1, progress=False)
    assert len(digests(small)) == 4 and len(digests(large)) == 7
    assert digests(small).items() <= digests(large).items()  # the 4-clip corpus is the 7-clip one's first clips
    clips, _ = load_corpus("synthetic", large)
    assert len(clips) == 7 and set(clips["actor"].astype(str)) == {"1001", "1002", "1003"}
    assert '"layout": "crema-d", "max_clips": 7, "clips": 7' in (large / "README.txt").read_text()
    with pytest.raises(ValueError, match="layout"):
        generate_corpus(tmp_path / "bad", n_actors=3, layout="crema", workers=1, progress=False)


@pytest.fixture(scope="module")
def pristine(corpus_3_actors) -> Path:
    """18 generated clips (3 actors x 6 emotions), never damaged (the session's corpus: damaged only as a copy)."""
    return corpus_3_actors


@pytest.mark.slow
def test_dask_on_a_two_process_local_cluster_by_address_matches_serial(pristine, tmp_path):
    """A real LocalCluster of two worker processes, reached by its scheduler address (as a remote one would be):
    both workers extract, and the features equal the serial runner's (audio exactly, embeddings within 1e-6)."""
    from dask.distributed import Client, LocalCluster, get_task_stream

    clips = load_corpus("synthetic", pristine)[0].head(6)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        with get_task_stream(client) as stream:
            report = extract_features(
                clips,
                DLIB_1FPS,
                tmp_path / "dask",
                scheduler="dask",
                dask_address=cluster.scheduler_address,
                progress=False,
            )
        assert {task["worker"] for task in stream.data} == set(client.scheduler_info()["workers"])
    assert sorted(report.done) == sorted(clips["clip_id"]) and not report.failed
    extract_features(clips, DLIB_1FPS, tmp_path / "serial", workers=1, progress=False)
    serial = load_features(clips, DLIB_1FPS, tmp_path / "serial")
    assert all(item.video_mask.any() for item in serial.values())
    assert_same_features(serial, load_features(clips, DLIB_1FPS, tmp_path / "dask"), EMBEDDING_ATOL)


@pytest.fixture()
def scale(monkeypatch):
    """The scale benchmark's module (``benchmarks/scale.py``)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    import scale

    return scale


@pytest.mark.slow
def test_bad_files_in_a_generated_corpus_are_named_and_a_rerun_touches_only_what_is_missing(pristine, tmp_path, scale):
    root = Path(shutil.copytree(pristine, tmp_path / "corpus"))
    clips = load_corpus("synthetic", root)[0]
    assert len(clips) == 18
    broken = scale.damage(clips, clips["clip_id"][::3])  # missing, empty, corrupt; audio, then video
    assert len(broken) == 6
    cache = tmp_path / "cache"
    first = extract_features(clips, DLIB_1FPS, cache, workers=2, progress=False)
    good = set(clips["clip_id"]) - set(broken)
    assert set(first.done) == good and not first.skipped
    assert dict(first.failed).keys() == broken.keys()
    for clip_id, reason in first.failed:
        assert str(broken[clip_id]) in reason, reason
        assert f"FAILED {clip_id}: " in str(first)
    folder = clip_dir(cache, "synthetic", DLIB_1FPS)
    stored = {path.name: path.stat().st_mtime_ns for path in folder.glob("*.npz")}
    assert len(stored) == len(good)

    repaired = sorted(broken)[:2]
    for clip_id in repaired:
        shutil.copy(pristine / broken[clip_id].relative_to(root), broken[clip_id])
    second = extract_features(clips, DLIB_1FPS, cache, workers=1, progress=False)
    assert sorted(second.done) == repaired
    assert set(second.skipped) == good
    assert dict(second.failed).keys() == set(broken) - set(repaired)
    assert {name: folder.joinpath(name).stat().st_mtime_ns for name in stored} == stored  # good entries untouched
    assert set(load_features(clips, DLIB_1FPS, cache, missing="skip")) == good | set(repaired)


def extraction(per_clip: float, memory: float) -> dict:
    """What the scale benchmark records of one size's extraction (the fields its summary reads)."""
    return {
        "extracted": 10,
        "mean_clip_seconds": 1.8,
        "wall_seconds_per_clip": per_clip,
        "cpu_seconds_per_clip": per_clip,
        "steady_state": {"wall_seconds_per_clip": per_clip},
        "peak_memory_mb": memory,
    }


def test_scale_benchmark_skips_measured_sizes_and_computes_its_targets(tmp_path, monkeypatch, scale):
    """A rerun after a kill measures only what the JSON lacks: a complete size is skipped, a size with its
    extraction but not its training runs the training only."""
    out = tmp_path / "scale.json"
    settings = {"workers": 2, "fps": 5.0, "backend": "dlib"}
    sizes = {
        "100": {"complete": True, "extraction": extraction(0.5, 1000)},
        "1000": {"extraction": extraction(0.55, 1300)},
    }
    out.write_text(json.dumps({"settings": settings, "sizes": sizes}))
    trained = []
    monkeypatch.setattr(scale, "make_corpus", lambda *a: pytest.fail("a measured size was generated again"))
    monkeypatch.setattr(scale, "bench_training", lambda *a, **k: trained.append(k) or {"epoch_seconds": 1.0})
    scale.main(["--sizes", "100", "1000", "--workers", "2", "--out", str(out), "--work-dir", str(tmp_path / "w")])
    result = json.loads(out.read_text())
    assert trained == [{}, {"stream": True}]  # the unmeasured size only: in memory, then streamed
    assert result["sizes"]["1000"]["complete"] and result["partial"]
    assert result["targets"]["per_clip_time_flat"] is True and result["targets"]["extraction_memory_flat"] is False
    assert result["targets"]["per_clip_time_ratio"] == 1.1 and result["targets"]["extraction_memory_ratio"] == 1.3


def test_scale_benchmark_remeasures_a_measured_size_from_an_empty_cache(tmp_path, monkeypatch, scale):
    out, work = tmp_path / "scale.json", tmp_path / "w"
    old = {"complete": True, "extraction": extraction(0.7, 1000)}
    out.write_text(json.dumps({"settings": {"workers": 2, "fps": 5.0, "backend": "dlib"}, "sizes": {"100": old}}))
    (work / "size-100" / "cache").mkdir(parents=True)
    (work / "size-100" / "cache" / "stale.npz").write_bytes(b"x")
    caches = []

    def measured(corpus, cache, config, workers):
        caches.append(sorted(p.name for p in cache.rglob("*")))
        return extraction(0.4, 1000)

    monkeypatch.setattr(scale, "make_corpus", lambda folder, size, workers: (folder, 0.0))
    monkeypatch.setattr(scale, "bench_extraction", measured)
    monkeypatch.setattr(scale, "bench_training", lambda *a, **k: {"epoch_seconds": 1.0})
    scale.main(["--sizes", "100", "--workers", "2", "--out", str(out), "--work-dir", str(work)])
    assert caches == []  # measured: skipped
    scale.main(["--sizes", "100", "--workers", "2", "--out", str(out), "--work-dir", str(work), "--remeasure"])
    assert caches == [[]]  # measured again, from an empty cache
    entry = json.loads(out.read_text())["sizes"]["100"]
    assert entry["complete"] and entry["extraction"]["steady_state"]["wall_seconds_per_clip"] == 0.4


@pytest.mark.slow
def test_scale_benchmarks_bad_input_phase_keeps_the_corpus_and_checks_what_it_claims(pristine, tmp_path, scale):
    """The bad-input phase breaks files in a hard-linked copy only; the good clips it took out of the cache copy are
    extracted, each broken file is named, and the rerun retries the broken clips only."""
    folder = tmp_path / "size-8"
    for path in sorted(pristine.glob("AudioWAV/*.wav"))[:8]:  # 8 of the 18 clips, with their videos
        for source in (path, pristine / "VideoMP4" / f"{path.stem}.mp4"):
            (folder / "corpus" / source.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(source, folder / "corpus" / source.parent.name / source.name)
    clips = load_corpus("synthetic", folder / "corpus")[0]
    extract_features(clips, DLIB_1FPS, folder / "cache", workers=1, progress=False)  # in this process: no start-up
    before = digests(folder / "corpus", "*/*")
    result = scale.bench_bad_input(folder, 3, 1, DLIB_1FPS)
    assert digests(folder / "corpus", "*/*") == before and len(before) == 16 and not (folder / "bad_input").exists()
    first = result["first_run"]
    counts = ("extracted", "cached_before", "failed", "failures_naming_their_file")
    assert [first[key] for key in counts] == [3, 2, 3, 3]  # 3 good clips extracted, 3 broken ones named
    assert result["every_good_clip_stored"] and result["rerun"]["retried_only_the_broken"]
    assert result["rerun"]["failed"] == 3 and result["rerun"]["cached_before"] == 5
    sizes = {"8": {"extraction": extraction(0.4, 1000), "bad_input": result}, "4": {"extraction": extraction(0.4, 9)}}
    assert scale.targets(sizes)["bad_input_handled"] is True
