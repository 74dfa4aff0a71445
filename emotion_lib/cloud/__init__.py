"""Training on Amazon SageMaker: the job request, the deploy and monitor scripts' code, the container's side.

``aws-setup/deploy_attention_model.sh`` and ``aws-setup/monitor_attention_model.sh`` run :mod:`.deploy` and
:mod:`.monitor`; ``aws-setup/sagemaker_entry.py`` (the script SageMaker runs) uses :mod:`.sagemaker_env`. boto3 is
the optional ``cloud`` extra and is imported only when a script talks to AWS.
"""

from emotion_lib.cloud.job import JobSettings, config_hyperparameters, image_uri, training_job_request
from emotion_lib.cloud.prices import ON_DEMAND_USD_PER_HOUR, cost_estimate
from emotion_lib.cloud.sagemaker_env import TrainingRun, publish_model, training_run

__all__ = [
    "ON_DEMAND_USD_PER_HOUR",
    "JobSettings",
    "TrainingRun",
    "config_hyperparameters",
    "cost_estimate",
    "image_uri",
    "publish_model",
    "training_job_request",
    "training_run",
]
