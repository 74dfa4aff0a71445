"""Real-time voice + face emotion demo (the seed's command line); the same as the `realtime-emotion-demo` entry point.

    python scripts/realtime_emotion_demo.py --model reports/models/synthetic_fusion.keras --window_size 30 \
        --display_width 800 --display_height 600
    python scripts/realtime_emotion_demo.py --model M --source clip.mp4 --headless --output out.mp4
"""

import sys

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.realtime.app import main

if __name__ == "__main__":
    sys.exit(main())
