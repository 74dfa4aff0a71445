"""``python -m emotion_lib.experiments``: the real-data experiments (same as ``emotion-lib evaluate``)."""

import sys

from emotion_lib.experiments.registry import main

sys.exit(main())
