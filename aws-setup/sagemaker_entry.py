"""The script SageMaker runs in the TensorFlow training container: SageMaker's environment and hyperparameters
become one ``python -m emotion_lib train ...`` run whose output folder is the synced checkpoint folder (so a
restarted spot job resumes), and the finished model is copied to ``SM_MODEL_DIR`` (uploaded as ``model.tar.gz``).

It calls the command line, so it lives outside the library (``emotion_lib.cloud`` sits below ``cli``).
"""

import os
import sys

from emotion_lib.cloud.sagemaker_env import publish_model, training_run


def main(args: list[str]) -> int:
    run = training_run(os.environ, args)
    os.environ.update(run.environment)  # before the command line is imported: EMOTION_CACHE is read at import
    from emotion_lib.cli import main as cli_main

    print("emotion_lib train " + " ".join(run.argv[1:]), flush=True)
    status = cli_main(run.argv)
    if status == 0:
        print(f"model written to {publish_model(run)}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
