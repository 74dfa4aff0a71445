"""Train the branched attention model from the command line: ``python -m emotion_lib train`` under its original name.

    python scripts/train_branched_attention.py --epochs 2
    python scripts/train_branched_attention.py --corpus ravdess --data-dir ../shared/data/ravdess --modalities audio
    python scripts/train_branched_attention.py --recipe voice

``--help`` lists every option. Writes a model bundle (``models/attention_focal_loss/model_best.keras`` with its
configuration, normalisers, int8 TFLite export and checksums); a killed run started again resumes.
"""

import sys

from emotion_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
