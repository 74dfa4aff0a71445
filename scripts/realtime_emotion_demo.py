"""Real-time voice + face emotion demo: ``python -m emotion_lib demo`` under its original name.

    python scripts/realtime_emotion_demo.py --model reports/models/synthetic_fusion --window_size 30 \
        --display_width 800 --display_height 600
    python scripts/realtime_emotion_demo.py --model M --source clip.mp4 --headless --output out.mp4
"""

import sys

from emotion_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
