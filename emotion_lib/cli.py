"""The command line of emotion_lib: ``python -m emotion_lib <command> [options]`` (or ``emotion-lib <command>``).

Every command is one entry of :data:`COMMANDS` (name -> :class:`Command`: help, options, run function); heavy
libraries are imported only when a command runs, so ``--help`` and the light commands stay fast.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.options import non_negative_int, positive_float, positive_int
from emotion_lib.paths import METRICS_PATH, REPO_ROOT, REPORTS_DIR, SPLITS_DIR, SYNTHETIC_DIR, shared_data_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # no C++ start-up notices of TensorFlow in the program's output

DEFAULT_PROG = "python -m emotion_lib"
DESCRIPTION = "Multimodal (voice + face) emotion recognition: data, features, experiments, models and the demo."


@dataclass(frozen=True)
class Command:
    """One subcommand: a one-line help, a function adding its options, a function running it (returning the
    exit status; its docstring is the command's description) and example arguments for the help text."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    examples: tuple[str, ...] = ()
    passthrough: bool = False
    """The command parses its own options: everything after its name is handed over as ``args.rest``."""


# ------------------------------------------------------------------------------------------------ generate
def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SYNTHETIC_DIR, help="output folder (CREMA-D layout)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus (the same seed, the same files)")
    parser.add_argument("--actors", type=int, default=24, help="number of synthetic actors (at least 3)")
    parser.add_argument("--clips-per-emotion", type=int, default=3, help="clips per actor and emotion")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty folder the generator did not make (overwrites)"
    )


def _generate(args: argparse.Namespace) -> int:
    """Write the synthetic default corpus (rule-based voices and faces, not real emotion data)."""
    from emotion_lib.data.synthetic import generate_corpus

    out = generate_corpus(
        args.out,
        seed=args.seed,
        n_actors=args.actors,
        clips_per_emotion=args.clips_per_emotion,
        workers=args.workers,
        force=args.force,
    )
    print(f"synthetic corpus (not real emotion data) written to {out}")
    return 0


# -------------------------------------------------------------------------------------------------- splits
def _splits_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SPLITS_DIR, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the actor assignment")


def _splits(args: argparse.Namespace) -> int:
    """Write the versioned speaker-independent split and fold CSVs (emotion_lib/data/split_csvs/*.csv)."""
    from emotion_lib.data.splits import write_splits

    for path in write_splits(args.out, seed=args.seed):
        print(path)
    return 0


# ------------------------------------------------------------------------------------------------- extract
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
    parser.add_argument("--fps", type=positive_float, default=5.0, help="video frames sampled per second")
    parser.add_argument("--detect-width", type=positive_int, default=320, help="face detection frame width in pixels")
    parser.add_argument("--fer-output", default="probabilities", choices=["probabilities", "features"])
    parser.add_argument("--facenet-weights", default=None, help="facenet-pytorch weights (.pt or vggface2)")
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="processes (default: EMOTION_WORKERS, else all cores)"
    )
    parser.add_argument("--scheduler", default="processes", choices=["processes", "dask"])
    parser.add_argument("--dask-address", default=None, help="Dask scheduler address (default: a LocalCluster)")
    parser.add_argument("--subset", type=non_negative_int, default=0, help="number of clips to draw (0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset draw")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _extract(args: argparse.Namespace) -> int:
    """Extract and cache the voice features (openSMILE) and face features of a corpus (resumable: clips already
    in the cache are skipped). Exit status 1 when clips were attempted and every one failed (each is listed);
    130 on Ctrl-C (the clips stored are whole; run the command again to resume)."""
    from emotion_lib.data.clips import subset_clips
    from emotion_lib.data.corpora import load_corpus
    from emotion_lib.features.faces.base import BackendUnavailable
    from emotion_lib.features.store import ExtractionConfig, extract_features

    try:
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
    except KeyboardInterrupt as interrupt:
        print(f"{interrupt}" if str(interrupt) else "interrupted before any clip was extracted", file=sys.stderr)
        return 130
    print(report)
    return 1 if report.failed and not report.done and not report.skipped else 0


# ------------------------------------------------------------------------------------------------ evaluate
def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from emotion_lib.experiments.registry import EXPERIMENTS

    parser.add_argument("--only", nargs="*", choices=list(EXPERIMENTS), help="experiments to run (default: all)")
    parser.add_argument("--data-dir", type=Path, default=shared_data_dir(), help="the real clips (../shared/data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (each repeats every fold)")
    parser.add_argument("--metrics", type=Path, default=METRICS_PATH, help="metrics JSON to update")
    parser.add_argument("--quick", action="store_true", help="a few clips per actor: smoke run, not results")
    parser.add_argument(
        "--facenet-weights",
        type=Path,
        default=None,
        help="facenet-pytorch weights (.pt file or vggface2) instead of the packaged CASIA-WebFace FaceNet in CK+",
    )


def _evaluate(args: argparse.Namespace) -> int:
    """Run the real-data experiments (RAVDESS, SAVEE, CK+, the end-to-end check on real face videos) and record
    each in the metrics file with the command that reproduces it. The neural experiments (ravdess_neural,
    end_to_end) run at least 3 seeds. Skipped, with a message, when the real data folder is absent."""
    from emotion_lib.experiments.common import EVALUATE_COMMAND, Context
    from emotion_lib.experiments.registry import run_experiments

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = (
        EVALUATE_COMMAND
        + (" --quick" if args.quick else "")
        + (f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0] else "")
    )
    ctx = Context(
        data_dir=args.data_dir,
        metrics_path=args.metrics,
        seeds=tuple(args.seeds),
        quick=args.quick,
        command=command,
        facenet_weights=args.facenet_weights,
    )
    run_experiments(ctx, args.only)
    return 0


# ------------------------------------------------------------------------------------------------- results
def _results_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=Path, default=METRICS_PATH, help="the recorded experiments")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "results.md", help="the results page to write")
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md", help="the README to update")


def _results(args: argparse.Namespace) -> int:
    """Regenerate the results page (reports/results.md) and the README's results section (between the
    <!-- results:start --> and <!-- results:end --> markers) from the metrics file; nothing is typed by hand."""
    from emotion_lib.experiments.results import write_results

    count, readme_updated = write_results(args.metrics, args.out, args.readme)
    print(f"wrote {args.out} ({count} experiments)")
    if readme_updated:
        print(f"updated the results section of {args.readme}")
    else:
        print(f"{args.readme} missing or without results markers: README not changed")
    return 0


# ---------------------------------------------------------------------------------------------------- demo
def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo parses its own options (``demo --help`` lists them)."""


def _demo(args: argparse.Namespace) -> int:
    """The real-time voice + face emotion demo (OpenCV window, webcam and microphone, or a video file)."""
    from emotion_lib.realtime.app import main as demo_app  # OpenCV and the model only when the demo runs

    return demo_app(args.rest, prog=f"{args.prog} demo")


# ------------------------------------------------------------------------------------------------- predict
def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="audio (WAV, FLAC, MP3), video (MP4, FLV) or image files")
    parser.add_argument(
        "--model",
        default="av",
        metavar="NAME|PATH",
        help="a pretrained model: a bundle folder of models/ (voice, face, av, av-branched), or a bundle's PATH",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (one object per file)")
    output.add_argument("--csv", action="store_true", help="print CSV (one row per file, and per time step)")
    parser.add_argument("--timeline", action="store_true", help="also the probabilities over time (sliding window)")


def _predict(args: argparse.Namespace) -> int:
    """What emotion is in these files? Prints the six class probabilities, the label and the modalities used (voice,
    face) per file; a file that cannot be answered is listed with its reason and the others are still answered.
    Exit status 1 only when every file failed; 2 when the model is missing or does not fit."""
    from emotion_lib.features.faces.base import BackendUnavailable
    from emotion_lib.inference import predict, to_csv, to_json, to_table

    try:
        results = predict(args.files, model=args.model, timeline=args.timeline)
    except BackendUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(to_json(results) if args.json else to_csv(results) if args.csv else to_table(results))
    return 0 if any(result.ok for result in results) else 1


# --------------------------------------------------------------------------------------------------- train
def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from emotion_lib.experiments.training_run import add_arguments

    add_arguments(parser)


def _train(args: argparse.Namespace) -> int:
    """Train the branched attention model on a corpus (or, with --recipe, one of the shipped real-data models) and
    write a model bundle; a killed run started again resumes (see emotion_lib/experiments/training_run.py)."""
    from emotion_lib.experiments.training_run import run

    return run(args)


COMMANDS: dict[str, Command] = {
    "generate": Command(
        "write the synthetic default corpus",
        _generate_arguments,
        _generate,
        ("--out data/synthetic", "--actors 3 --clips-per-emotion 1 --out /tmp/tiny"),
    ),
    "splits": Command(
        "write the speaker-independent splits (emotion_lib/data/split_csvs/*.csv)", _splits_arguments, _splits, ("",)
    ),
    "extract": Command(
        "extract and cache the audio/video features of a corpus",
        _extract_arguments,
        _extract,
        ("--corpus ravdess --data-dir ../shared/data/ravdess --backend none", "--subset 20 --fps 2"),
    ),
    "evaluate": Command(
        "run the real-data experiments and record them in reports/metrics.json",
        _evaluate_arguments,
        _evaluate,
        ("--only ravdess_voice ckplus", "--quick", "--only end_to_end --seeds 0 1 2"),
    ),
    "results": Command(
        "regenerate reports/results.md and the README results section",
        _results_arguments,
        _results,
        ("", "--metrics reports/metrics.json --out reports/results.md --readme README.md"),
    ),
    "train": Command(
        "train the branched attention model and write a model bundle (models/attention_focal_loss/)",
        _train_arguments,
        _train,
        (
            "--epochs 2",
            "--corpus ravdess --data-dir ../shared/data/ravdess --modalities audio --output-dir /tmp/voice",
            "--corpus crema-d --data-dir data/crema-d --encoder transformer --loss crossentropy --seed 1",
            "--recipe voice",
            "--recipe av --data-dir ../shared/data --output-dir /tmp/av",
        ),
    ),
    "demo": Command(
        "run the real-time OpenCV demo (options: demo --help)",
        _demo_arguments,
        _demo,
        ("--model reports/models/synthetic_fusion", "--model M --source clip.mp4 --headless --output out.mp4"),
        passthrough=True,
    ),
    "predict": Command(
        "what emotion is in these audio, video or image files?",
        _predict_arguments,
        _predict,
        (
            "data/samples/crema-d/VideoFlash/1001_DFA_ANG_XX.flv --model av",
            "clip.wav clip.mp4 --model voice --json",
            "face.png --model face",
            "clip.mp4 --timeline --csv",
        ),
    ),
}
"""Command name -> :class:`Command`; adding a command is adding an entry here."""


def _examples(prog: str, items: Sequence[tuple[str, str]]) -> str:
    return "examples:\n" + "\n".join(f"  {prog} {name} {example}".rstrip() for name, example in items)


def build_parser(prog: str = DEFAULT_PROG, only: str | None = None) -> argparse.ArgumentParser:
    """The parser of :data:`COMMANDS`; with ``only``, the options of that command alone (train's import TensorFlow)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=_examples(prog, [(name, command.examples[0]) for name, command in COMMANDS.items()])
        + f"\n\nEach command has its own help: {prog} <command> --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(prog=prog)
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=command.help,
            description=inspect.getdoc(command.run),
            epilog=_examples(prog, [(name, example) for example in command.examples]) if command.examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=not command.passthrough,
        )
        if only is None or only == name:
            command.add_arguments(sub)
        sub.set_defaults(command_entry=command)
    return parser


def _prog() -> str:
    """How the program was called: the console script's name, else ``python -m emotion_lib``."""
    name = Path(sys.argv[0]).name
    return DEFAULT_PROG if not name or name.endswith(".py") or name == "-c" else name


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process arguments) and run one command; returns the exit status.

    Errors of the run (``OSError``, ``ValueError``) are printed as one line, not a traceback (status 2).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_prog(), argv[0] if argv else "")
    args, rest = parser.parse_known_args(argv)
    command: Command = args.command_entry
    if command.passthrough:
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return command.run(args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def demo_main() -> int:
    """The ``realtime-emotion-demo`` console script: ``demo`` with the process arguments."""
    return main(["demo", *sys.argv[1:]])


def train_main() -> int:
    """The ``train-branched-attention`` console script: ``train`` with the process arguments."""
    return main(["train", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
