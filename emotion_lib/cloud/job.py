"""The SageMaker ``CreateTrainingJob`` request of a training run (pure: no AWS call, no file access).

The job runs the project's entry script (``aws-setup/sagemaker_entry.py``) in AWS's TensorFlow training container
("script mode"): SageMaker's training toolkit in that image downloads the source archive named by the
hyperparameter ``sagemaker_submit_directory``, installs its ``requirements.txt`` and runs ``sagemaker_program``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emotion_lib.cloud.sagemaker_env import CHECKPOINT_DIR

if TYPE_CHECKING:
    from emotion_lib.models.config import ModelConfig

DEFAULT_TF_VERSION = "2.19.0"
DEFAULT_PYTHON = "py312"
"""The default image tag ``<tf>-gpu-<py>``: TensorFlow 2.x with Keras 3 (the project needs Keras 3). Not checked
against AWS's published image list from here: pass ``--tf-version`` / ``--image-uri`` for the tag you see there."""
DLC_ACCOUNT = "763104351884"
"""AWS account of the Deep Learning Container images in most commercial regions; the opt-in regions below have
their own (AWS's deep-learning-containers "available images" page lists them; check it for a new region)."""
DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}
ENTRY_SCRIPT = "sagemaker_entry.py"
METRIC_DEFINITIONS = [
    {"Name": "epoch", "Regex": r"epoch ([0-9]+)/[0-9]+:"},
    {"Name": "loss", "Regex": r"[0-9]: loss ([0-9.]+)"},
    {"Name": "val_loss", "Regex": r"val_loss ([0-9.]+)"},
    {"Name": "val_accuracy", "Regex": r"val_accuracy ([0-9.]+)"},
]
"""CloudWatch metrics SageMaker scrapes from the trainer's epoch lines in the job's log
(``epoch 3/30: loss 1.2345, val_loss 1.3012, val_accuracy 0.412, ...``)."""


def image_uri(region: str, tf_version: str = DEFAULT_TF_VERSION, python: str = DEFAULT_PYTHON, gpu: bool = True) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/tensorflow-training:<tf>-<gpu|cpu>-<py>``."""
    account = DLC_ACCOUNTS.get(region, DLC_ACCOUNT)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/tensorflow-training:{tf_version}-{'gpu' if gpu else 'cpu'}-{python}"


def config_hyperparameters(config: ModelConfig) -> dict[str, str]:
    """Every ``ModelConfig`` field as a SageMaker hyperparameter (JSON text; SageMaker takes strings only)."""
    return {name: json.dumps(value) for name, value in dataclasses.asdict(config).items() if name != "extra"}


@dataclass(frozen=True)
class JobSettings:
    """Where and how a training job runs (see ``deploy_attention_model.sh --help`` for each)."""

    job_name: str
    region: str
    bucket: str
    prefix: str
    role_arn: str
    corpus: str
    instance_type: str = "ml.g4dn.xlarge"
    instance_count: int = 1
    volume_gb: int = 30
    spot: bool = True
    max_run_seconds: int = 4 * 3600
    max_wait_seconds: int = 8 * 3600
    image: str = ""
    with_cache: bool = False

    def s3(self, *parts: str) -> str:
        return "s3://" + "/".join([self.bucket, self.prefix.strip("/"), *parts]).replace("//", "/")

    @property
    def data_uri(self) -> str:
        return self.s3("data", self.corpus, "corpus")

    @property
    def cache_uri(self) -> str:
        return self.s3("data", self.corpus, "cache")

    @property
    def source_uri(self) -> str:
        return self.s3("jobs", self.job_name, "source", "sourcedir.tar.gz")

    @property
    def checkpoint_uri(self) -> str:
        return self.s3("jobs", self.job_name, "checkpoints")

    @property
    def output_uri(self) -> str:
        return self.s3("jobs", self.job_name, "output")


def _channel(name: str, uri: str) -> dict:
    source = {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, "InputMode": "File"}


def training_job_request(settings: JobSettings, config: ModelConfig) -> dict:
    """The ``CreateTrainingJob`` request: the image, the script, ``config`` as hyperparameters, the channels, the
    instances, managed spot training with checkpoints synced to S3, and the output location."""
    if settings.spot and settings.max_wait_seconds < settings.max_run_seconds:
        raise ValueError("the spot wait limit must be at least the run time limit (MaxWaitTimeInSeconds)")
    hyper = config_hyperparameters(config) | {
        "corpus": json.dumps(settings.corpus),
        "checkpoint_dir": json.dumps(CHECKPOINT_DIR),
        "sagemaker_program": json.dumps(ENTRY_SCRIPT),
        "sagemaker_submit_directory": json.dumps(settings.source_uri),
        "sagemaker_region": json.dumps(settings.region),
        "sagemaker_job_name": json.dumps(settings.job_name),
        "sagemaker_container_log_level": "20",
    }
    stopping = {"MaxRuntimeInSeconds": settings.max_run_seconds}
    if settings.spot:
        stopping["MaxWaitTimeInSeconds"] = settings.max_wait_seconds
    channels = [_channel("train", settings.data_uri)]
    if settings.with_cache:
        channels.append(_channel("cache", settings.cache_uri))
    return {
        "TrainingJobName": settings.job_name,
        "AlgorithmSpecification": {
            "TrainingImage": settings.image or image_uri(settings.region),
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "RoleArn": settings.role_arn,
        "HyperParameters": hyper,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": settings.output_uri},
        "ResourceConfig": {
            "InstanceType": settings.instance_type,
            "InstanceCount": settings.instance_count,
            "VolumeSizeInGB": settings.volume_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": settings.spot,
        "CheckpointConfig": {"S3Uri": settings.checkpoint_uri, "LocalPath": CHECKPOINT_DIR},
        "Environment": {"TF_CPP_MIN_LOG_LEVEL": "1"},
    }
