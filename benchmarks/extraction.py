"""Feature-extraction benchmark over the real clips in ../shared/data; writes reports/benchmarks/extraction.json.

Measured in one run, side by side with a naive baseline:

* audio (RAVDESS FLAC, CREMA-D MP3, the MP3 track of CREMA-D FLVs): seconds of audio per second of one core
  ("x real time per core") for our loader + one reused, pruned openSMILE engine (with the share spent decoding),
  for a naive loop (librosa load and a new openSMILE object per clip), and for the cached parallel extraction
  (process pool, all workers);
* video, per face backend (CREMA-D 480x360 FLV, RAVDESS 224x224 face crops, one RAVDESS 1280x720 clip):
  end-to-end frames per second (decode + detect + align + embed) for our streaming pipeline (detection on a
  downscaled grey frame, coarse first; frames embedded in chunks; dlib's ResNet run by TensorFlow) in one process
  and through the parallel cached extraction, and for a naive one-frame-at-a-time loop (decode every frame,
  full-resolution detection, embed each frame alone; for dlib with dlib's own ResNet forward pass). Frames/s
  counts *sampled* frames (the ones embedded, at ``--fps``); the number of source video frames covered per
  second is reported next to it;
* peak memory of the process tree (this process + workers), sampled every 0.2 s, per phase: the sum of PSS
  (physical memory, shared pages split between processes) and, for reference, the sum of RSS.

Usage: ``python benchmarks/extraction.py [--fps 5] [--workers 2] [--audio-clips 120] [--face-clips 12]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.features.audio import SAMPLE_RATE, AudioFeatureExtractor, load_audio
from emotion_lib.features.faces import BackendUnavailable, FaceBackend, get_face_backend
from emotion_lib.features.store import ExtractionConfig, extract_features
from emotion_lib.features.video import embed_video
from emotion_lib.paths import BENCHMARKS_DIR, shared_data_dir

TARGETS = {"audio_x_real_time_per_core": 60.0, "video_frames_per_s_offline": 25.0, "peak_memory_mb": 2048.0}


class PeakMemory:
    """Samples the memory of this process and its children in a background thread.

    ``peak_mb`` sums PSS (proportional set size: shared library pages split between the processes that map
    them, i.e. the physical memory the tree really holds); ``peak_rss_mb`` sums RSS, which counts pages shared
    by several workers (TensorFlow's libraries, for instance) once per process and so overstates the total.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak_mb, self.peak_rss_mb, self._stop = interval, 0.0, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            pss = rss = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    info = process.memory_full_info()
                except psutil.Error:
                    continue
                pss, rss = pss + getattr(info, "pss", info.rss), rss + info.rss
            self.peak_mb, self.peak_rss_mb = max(self.peak_mb, pss / 2**20), max(self.peak_rss_mb, rss / 2**20)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished (reaped) child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_average() -> list[float]:
    """The machine's load average over 1, 5 and 15 minutes (recorded beside timings: they move with it)."""
    return [round(x, 2) for x in os.getloadavg()]


class Clock:
    """Wall and CPU seconds of a block: ``with Clock() as clock: ...; clock.wall, clock.cpu``."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, cpu_seconds() - self._cpu


def _clip_rows(paths: list[Path], corpus: str, video: bool) -> list[dict]:
    return [
        dict(clip_id=p.stem, corpus=corpus, actor="bench", audio_path=str(p), video_path=str(p) if video else None)
        for p in paths
    ]


def _video_info(path: Path) -> tuple[int, int, int]:
    """(source frame count, width, height) of a video."""
    capture = cv2.VideoCapture(str(path))
    info = tuple(
        int(capture.get(p)) for p in (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)
    )
    capture.release()
    return info


def bench_audio(paths: list[Path], workers: int, scratch: Path) -> dict:
    """Our audio path, a naive loop and the parallel cached extraction on the same clips."""
    import librosa
    import opensmile

    extractor = AudioFeatureExtractor("eGeMAPSv02", "lld")
    ours, naive, seconds, decoding = [], [], [], []
    for path in paths:
        with Clock() as clock:
            with Clock() as decode:
                signal = load_audio(path)
            extractor.extract(signal)
        ours.append(clock)
        decoding.append(decode.cpu)
        seconds.append(signal.size / SAMPLE_RATE)
        with Clock() as clock:
            naive_signal, _ = librosa.load(str(path), sr=SAMPLE_RATE, mono=True)
            smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
            smile.process_signal(naive_signal, SAMPLE_RATE)
        naive.append(clock)
    rows = _clip_rows(paths, "bench-audio", video=False)
    with Clock() as parallel:
        report = extract_features(
            rows, ExtractionConfig(video_backend=None), scratch / "audio", workers=workers, progress=False
        )
    total = sum(seconds)

    def speed(clocks: list[Clock]) -> dict:
        cpu, wall = sum(c.cpu for c in clocks), sum(c.wall for c in clocks)
        return {
            "x_real_time_per_core_cpu": round(total / cpu, 1),
            "median_x_real_time_per_clip_cpu": round(statistics.median(s / c.cpu for s, c in zip(seconds, clocks)), 1),
            "x_real_time_wall": round(total / wall, 1),
            "cpu_seconds": round(cpu, 2),
            "wall_seconds": round(wall, 2),
        }

    ours_speed, naive_speed = speed(ours), speed(naive)
    ours_speed["decoding_share_of_cpu"] = round(sum(decoding) / ours_speed["cpu_seconds"], 3)
    per_format = {}
    for suffix in sorted({path.suffix.lower() for path in paths}):
        chosen = [i for i, path in enumerate(paths) if path.suffix.lower() == suffix]
        audio, cpu = sum(seconds[i] for i in chosen), sum(ours[i].cpu for i in chosen)
        per_format[suffix] = {
            "clips": len(chosen),
            "audio_seconds": round(audio, 1),
            "ours_x_real_time_per_core_cpu": round(audio / cpu, 1),
            "ours_decoding_share_of_cpu": round(sum(decoding[i] for i in chosen) / cpu, 3),
            "naive_x_real_time_per_core_cpu": round(audio / sum(naive[i].cpu for i in chosen), 1),
        }
    return {
        "clips": len(paths),
        "audio_seconds": round(total, 1),
        "extractor": extractor.config(),
        "ours_one_process": ours_speed,
        "naive_one_process": naive_speed,
        "per_format": per_format,
        "speedup_vs_naive_cpu": round(naive_speed["cpu_seconds"] / ours_speed["cpu_seconds"], 2),
        "naive": "librosa.load (soxr resampling) + a new openSMILE object per clip",
        "parallel_cached": {
            "workers": workers,
            "done": len(report.done),
            "failed": report.failed,
            "wall_seconds": round(parallel.wall, 2),
            "cpu_seconds": round(parallel.cpu, 2),
            "x_real_time_wall": round(total / parallel.wall, 1),
            "x_real_time_per_core_cpu": round(total / parallel.cpu, 1),
            "note": "includes spawning the workers and importing openSMILE in each",
        },
    }


class NativeDlibBackend(FaceBackend):
    """The dlib backend as dlib ships it: dlib's own forward pass of the ResNet (no BLAS in dlib-bin), the
    baseline of our TensorFlow port (:mod:`emotion_lib.features.dlib_resnet`)."""

    name, dim = "dlib-native", 128

    def __init__(self, **options) -> None:
        import dlib
        import face_recognition_models

        super().__init__(**options)
        self._net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), self.dim)


def _naive_video(paths: list[Path], backend, fps: float) -> int:
    """Decode every frame, keep those at ``fps``, embed each one alone (the backend detects at full resolution)."""
    frames_done = 0
    for path in paths:
        capture = cv2.VideoCapture(str(path))
        source_fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        index, next_time = 0, 0.0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if (index + 0.5) / source_fps >= next_time:
                backend.embed([frame])
                frames_done += 1
                next_time += 1.0 / fps
            index += 1
        capture.release()
    return frames_done


def _rates(frames: int, clock: Clock, cores: int = 1) -> dict:
    """Frames per second of wall time, per core of CPU time and, with ``cores > 1``, projected on free cores."""
    rates = {
        "frames_per_s_wall": round(frames / clock.wall, 1),
        "frames_per_s_per_core_cpu": round(frames / clock.cpu, 1) if clock.cpu > 0 else None,
        "wall_seconds": round(clock.wall, 2),
        "cpu_seconds": round(clock.cpu, 2),
    }
    if cores > 1 and clock.cpu > 0:
        rates[f"frames_per_s_on_{cores}_free_cores_cpu"] = round(cores * frames / clock.cpu, 1)
    return rates


def _bench_in_process(name: str, options: dict, sets: dict[str, list[Path]], fps: float) -> dict:
    """Our streaming pipeline and the naive one-frame-at-a-time loop, one process, per video set."""
    with Clock() as load:
        backend = get_face_backend(name, **options)
        naive_options = {**options, "detect_width": 100_000, "coarse_first": False}
        naive_backend = (
            NativeDlibBackend(**naive_options) if name == "dlib" else get_face_backend(name, **naive_options)
        )
    result = {"backend": backend.config(), "model_load_seconds": round(load.wall, 2), "per_set": {}}
    frames_total = ours_cpu = naive_cpu = 0
    for set_name, paths in sets.items():
        frames = faces = 0
        with Clock() as ours:
            for path in paths:
                _, mask, _ = embed_video(path, backend, fps)
                frames, faces = frames + len(mask), faces + int(mask.sum())
        with Clock() as naive:
            naive_frames = _naive_video(paths, naive_backend, fps)
        infos = [_video_info(p) for p in paths]
        result["per_set"][set_name] = {
            "clips": len(paths),
            "frame_width_height": list(infos[0][1:]),
            "sampled_frames": frames,
            "source_frames": sum(info[0] for info in infos),
            "face_found_fraction": round(faces / max(frames, 1), 3),
            "ours_one_process": _rates(frames, ours),
            "naive_one_process": _rates(naive_frames, naive),
            "speedup_vs_naive_cpu": round((naive.cpu / max(naive_frames, 1)) / (ours.cpu / max(frames, 1)), 2),
        }
        frames_total, ours_cpu, naive_cpu = frames_total + frames, ours_cpu + ours.cpu, naive_cpu + naive.cpu
    result.update(
        {
            "ours_frames_per_s_per_core_cpu": round(frames_total / ours_cpu, 1),
            "naive_frames_per_s_per_core_cpu": round(frames_total / naive_cpu, 1),
            "speedup_vs_naive_cpu": round(naive_cpu / ours_cpu, 2),
        }
    )
    return result


def bench_video_parallel(
    name: str, options: dict, sets: dict[str, list[Path]], fps: float, workers: int, scratch: Path
) -> dict:
    """The parallel cached extraction of one backend (whole clips), as a user runs it: run before this process
    has loaded any model, so the peak memory is the workers' plus a light parent's."""
    rows = [row for set_name, paths in sets.items() for row in _clip_rows(paths, f"bench-{set_name}", video=True)]
    config = ExtractionConfig(
        video_backend=name, fps=fps, backend_options={k: v for k, v in options.items() if v is not None}
    )
    try:
        with PeakMemory() as memory, Clock() as parallel:
            report = extract_features(rows, config, scratch / name, workers=workers, progress=False)
    except BackendUnavailable as error:
        return {"available": False, "reason": str(error)}
    source = sum(_video_info(path)[0] for paths in sets.values() for path in paths)
    return {
        "available": True,
        "fps_sampled": fps,
        "parallel_cached": {
            "workers": workers,
            "done": len(report.done),
            "failed": report.failed,
            "sampled_frames": report.video_frames,
            "source_frames": source,
            **_rates(report.video_frames, parallel, workers),
            "source_frames_per_s_wall": round(source / parallel.wall, 1),
            "peak_memory_mb": round(memory.peak_mb, 1),
            "peak_rss_sum_mb": round(memory.peak_rss_mb, 1),
            "note": "whole clips (audio features too), including spawning the workers and loading the models in each",
        },
    }


def bench_video_in_process(name: str, options: dict, sets: dict[str, list[Path]], fps: float) -> dict:
    """One backend in this process: our streaming pipeline against the naive loop, with its peak memory."""
    with PeakMemory() as memory:
        result = _bench_in_process(name, options, sets, fps)
    return {**result, "peak_memory_mb_in_process": round(memory.peak_mb, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--audio-clips", type=int, default=120, help="RAVDESS FLAC clips (seeded draw)")
    parser.add_argument("--face-clips", type=int, default=24, help="RAVDESS face-crop videos")
    parser.add_argument("--backends", nargs="+", default=["dlib", "fer", "facenet"])
    parser.add_argument(
        "--facenet-weights",
        default=None,
        help="facenet-pytorch weights (.pt or vggface2); default: packaged CASIA-WebFace",
    )
    parser.add_argument("--out", type=Path, default=BENCHMARKS_DIR / "extraction.json")
    args = parser.parse_args(argv)
    data = shared_data_dir()
    if not data.exists():
        print(f"benchmark skipped: the real clips folder {data} is absent (see ../shared/data/README.md)")
        return 0
    rng = np.random.default_rng(0)
    ravdess = sorted(data.glob("ravdess/Actor_*/*.flac"))
    ravdess = [ravdess[i] for i in sorted(rng.choice(len(ravdess), min(args.audio_clips, len(ravdess)), replace=False))]
    flv = sorted(data.glob("crema-d/VideoFlash/*.flv"))
    audio_paths = ravdess + sorted(data.glob("crema-d/AudioMP3/*.mp3")) + flv
    video_sets = {
        "crema-d_flv_480x360": flv,
        "ravdess_faces_224x224": sorted(data.glob("ravdess-faces/Actor_*/*.mp4"))[: args.face_clips],
        "ravdess_video_1280x720": sorted(data.glob("ravdess-video/Actor_*/*.mp4")),
    }
    video_sets = {name: paths for name, paths in video_sets.items() if paths}
    options = {"dlib": {}, "fer": {"output": "probabilities"}, "facenet": {"weights": args.facenet_weights}}
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average_at_start": load_average(),
        },
        "settings": {"fps": args.fps, "workers": args.workers},
        "targets": TARGETS,
    }
    scratch = Path(tempfile.mkdtemp(prefix="extraction-bench-"))
    try:
        print(f"audio: {len(audio_paths)} clips", flush=True)
        with PeakMemory() as memory:
            results["audio"] = bench_audio(audio_paths, args.workers, scratch)
        results["audio"].update(peak_memory_mb=round(memory.peak_mb, 1), peak_rss_sum_mb=round(memory.peak_rss_mb, 1))
        results["video"] = {}
        chosen = {name: {k: v for k, v in options[name].items() if v is not None} for name in args.backends}
        for name, backend_options in chosen.items():  # every parallel run first: no model loaded here yet
            print(f"video: backend {name}, parallel extraction", flush=True)
            results["video"][name] = bench_video_parallel(
                name, backend_options, video_sets, args.fps, args.workers, scratch
            )
        for name, backend_options in chosen.items():
            if results["video"][name]["available"]:
                print(f"video: backend {name}, in this process vs the naive loop", flush=True)
                results["video"][name].update(bench_video_in_process(name, backend_options, video_sets, args.fps))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["peak_memory_mb_parallel_extraction"] = max(
        [results["audio"]["peak_memory_mb"]]
        + [v["parallel_cached"]["peak_memory_mb"] for v in results["video"].values() if v["available"]]
    )
    results["machine"]["load_average_at_end"] = load_average()
    dlib_video = results["video"].get("dlib", {})
    parallel_dlib = dlib_video.get("parallel_cached", {})
    results["targets_met"] = {
        "audio_x_real_time_per_core (cpu time)": results["audio"]["ours_one_process"]["x_real_time_per_core_cpu"]
        >= TARGETS["audio_x_real_time_per_core"],
        "video_frames_per_s_offline (wall, this run)": parallel_dlib.get("frames_per_s_wall", 0)
        >= TARGETS["video_frames_per_s_offline"],
        "video_frames_per_s_offline (cpu time, 2 free cores)": (
            parallel_dlib.get(f"frames_per_s_on_{args.workers}_free_cores_cpu") or 0
        )
        >= TARGETS["video_frames_per_s_offline"],
        "peak_memory_mb (parallel extraction, every backend)": results["peak_memory_mb_parallel_extraction"]
        < TARGETS["peak_memory_mb"],
        "peak_memory_mb (parallel extraction, dlib)": parallel_dlib.get("peak_memory_mb", 1e9)
        < TARGETS["peak_memory_mb"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
