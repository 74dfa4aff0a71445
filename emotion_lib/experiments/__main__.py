"""``python -m emotion_lib.experiments``: the same as ``python -m emotion_lib evaluate``."""

import sys

from emotion_lib.cli import main

sys.exit(main(["evaluate", *sys.argv[1:]]))
