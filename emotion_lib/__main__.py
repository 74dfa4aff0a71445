"""``python -m emotion_lib <command>``: the command line (:mod:`emotion_lib.cli`)."""

import sys

from emotion_lib.cli import main

sys.exit(main())
