"""Command-line entry points: ``python -m emotion_lib.cli <command> ...``.

Commands: ``generate-synthetic`` (the embedded default corpus), ``write-splits`` (the versioned
speaker-independent split CSVs). Each command is a ``(add_arguments, run)`` pair in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.paths import SPLITS_DIR, SYNTHETIC_DIR


def _generate_synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SYNTHETIC_DIR, help="output folder (CREMA-D layout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actors", type=int, default=24)
    parser.add_argument("--clips-per-emotion", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)


def _generate_synthetic(args: argparse.Namespace) -> int:
    from emotion_lib.synthetic import generate_corpus

    out = generate_corpus(args.out, seed=args.seed, n_actors=args.actors, clips_per_emotion=args.clips_per_emotion,
                          workers=args.workers)
    print(f"synthetic corpus (not real emotion data) written to {out}")
    return 0


def _write_splits_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SPLITS_DIR)
    parser.add_argument("--seed", type=int, default=0)


def _write_splits(args: argparse.Namespace) -> int:
    from emotion_lib.splits import write_splits

    for path in write_splits(args.out, seed=args.seed):
        print(path)
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "generate-synthetic": ("write the synthetic default corpus", _generate_synthetic_arguments, _generate_synthetic),
    "write-splits": ("write data/splits/*.csv", _write_splits_arguments, _write_splits),
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


if __name__ == "__main__":
    sys.exit(main())
