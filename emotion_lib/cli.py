"""Command-line entry points: ``python -m emotion_lib.cli <command> ...``.

Commands: ``generate-synthetic`` (the embedded default corpus), ``write-splits`` (the versioned
speaker-independent split CSVs), ``extract`` (cache openSMILE voice features and face embeddings). Each command
is a ``(add_arguments, run)`` pair in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.paths import SPLITS_DIR, SYNTHETIC_DIR


def _generate_synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SYNTHETIC_DIR, help="output folder (CREMA-D layout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actors", type=int, default=24)
    parser.add_argument("--clips-per-emotion", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)


def _generate_synthetic(args: argparse.Namespace) -> int:
    from emotion_lib.data.synthetic import generate_corpus

    out = generate_corpus(
        args.out, seed=args.seed, n_actors=args.actors, clips_per_emotion=args.clips_per_emotion, workers=args.workers
    )
    print(f"synthetic corpus (not real emotion data) written to {out}")
    return 0


def _write_splits_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SPLITS_DIR)
    parser.add_argument("--seed", type=int, default=0)


def _write_splits(args: argparse.Namespace) -> int:
    from emotion_lib.data.splits import write_splits

    for path in write_splits(args.out, seed=args.seed):
        print(path)
    return 0


def _extract_arguments(parser: argparse.ArgumentParser) -> None:
    from emotion_lib.features.audio import FEATURE_SETS, LEVELS
    from emotion_lib.features.faces.registry import FACE_BACKENDS
    from emotion_lib.paths import CACHE_DIR

    parser.add_argument("--corpus", default="synthetic", help="corpus name (synthetic, crema-d, ravdess, savee)")
    parser.add_argument("--data-dir", type=Path, default=SYNTHETIC_DIR, help="corpus folder")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="feature cache folder")
    parser.add_argument("--audio-set", default="eGeMAPSv02", choices=sorted(FEATURE_SETS))
    parser.add_argument("--audio-level", default="lld", choices=LEVELS)
    parser.add_argument("--backend", default="dlib", choices=[*FACE_BACKENDS, "none"], help="face backend or 'none'")
    parser.add_argument("--fps", type=float, default=5.0, help="video frames sampled per second")
    parser.add_argument("--detect-width", type=int, default=320, help="face detection frame width in pixels")
    parser.add_argument("--fer-output", default="probabilities", choices=["probabilities", "features"])
    parser.add_argument("--facenet-weights", default=None, help="local InceptionResnetV1 vggface2 state-dict file")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--scheduler", default="processes", choices=["processes", "dask"])
    parser.add_argument("--dask-address", default=None, help="Dask scheduler address (default: a LocalCluster)")
    parser.add_argument("--subset", type=int, default=0, help="number of clips to draw (0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset draw")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _extract(args: argparse.Namespace) -> int:
    """Exit status 1 when clips were attempted and every one failed (each failure is listed)."""
    from emotion_lib.data.clips import subset_clips
    from emotion_lib.data.corpora import load_corpus
    from emotion_lib.features.faces.base import BackendUnavailable
    from emotion_lib.features.store import ExtractionConfig, extract_features

    clips, load_report = load_corpus(args.corpus, args.data_dir)
    print(load_report)
    face_options = {"fer": {"output": args.fer_output}, "facenet": {"weights": args.facenet_weights}}
    config = ExtractionConfig(
        audio_feature_set=args.audio_set,
        audio_level=args.audio_level,
        video_backend=None if args.backend == "none" else args.backend,
        fps=args.fps,
        detect_width=args.detect_width,
        backend_options=face_options.get(args.backend, {}),
    )
    try:
        report = extract_features(
            subset_clips(clips, args.subset, args.seed),
            config,
            cache_dir=args.cache_dir,
            workers=args.workers,
            scheduler=args.scheduler,
            dask_address=args.dask_address,
            progress=not args.no_progress,
        )
    except BackendUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report)
    return 1 if report.failed and not report.done and not report.skipped else 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "generate-synthetic": ("write the synthetic default corpus", _generate_synthetic_arguments, _generate_synthetic),
    "write-splits": ("write data/splits/*.csv", _write_splits_arguments, _write_splits),
    "extract": ("extract and cache audio/video features of a corpus", _extract_arguments, _extract),
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one command; errors are printed as one line, not a traceback."""
    parser = argparse.ArgumentParser(prog="python -m emotion_lib.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def extract_main(argv: list[str] | None = None) -> int:
    """The ``emotion-extract`` console script: ``extract`` without the command word."""
    return main(["extract", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
