"""Regenerate reports/results.md and the README's results section: ``python -m emotion_lib results``."""

import sys

from emotion_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["results", *sys.argv[1:]]))
