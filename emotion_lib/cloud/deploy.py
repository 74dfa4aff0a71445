"""``aws-setup/deploy_attention_model.sh``: upload a corpus (and its feature cache) to S3 and start a SageMaker
training job that runs the project's ``train`` command on a GPU instance (managed spot, checkpoints on S3).

``--dry-run`` prints every request as JSON and sends nothing (no credentials needed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from emotion_lib.cloud.aws import (
    CloudError,
    check_bucket,
    client_error,
    folder_files,
    session,
    source_archive,
    upload_bytes,
    upload_folder,
)
from emotion_lib.cloud.job import DEFAULT_PYTHON, DEFAULT_TF_VERSION, JobSettings, image_uri, training_job_request
from emotion_lib.cloud.sagemaker_env import unsupported_settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deploy_attention_model.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help="corpus name (synthetic, crema-d, ravdess, savee)")
    p.add_argument("--data-dir", type=Path, required=True, help="corpus folder to upload (the 'train' channel)")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache to upload (the 'cache' channel)")
    p.add_argument("--bucket", default=os.environ.get("EMOTION_S3_BUCKET"), help="S3 bucket (or EMOTION_S3_BUCKET)")
    p.add_argument("--prefix", default="emotion-lib", help="key prefix in the bucket")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    p.add_argument("--region", default=region, help="AWS region of the bucket and the job (or AWS_REGION)")
    role = os.environ.get("SAGEMAKER_ROLE_ARN")
    p.add_argument("--role", default=role, help="SageMaker execution role ARN (or SAGEMAKER_ROLE_ARN)")
    p.add_argument("--job-name", default=None, help="default: emotion-attention-<UTC time>")
    p.add_argument("--config", type=Path, default=None, help="ModelConfig JSON (default: ModelConfig())")
    p.add_argument("--epochs", type=int, default=None, help="overrides the configuration's epochs")
    p.add_argument("--seed", type=int, default=None, help="overrides the configuration's seed")
    p.add_argument("--modalities", nargs="+", default=None, choices=["audio", "video"], help="overrides modalities")
    p.add_argument("--encoder", default=None, choices=["bilstm", "transformer"], help="overrides the encoder")
    p.add_argument("--loss", default=None, help="overrides the loss (focal, crossentropy)")
    p.add_argument("--instance-type", default="ml.g4dn.xlarge", help="ml.g4dn.xlarge (T4), ml.g5.xlarge (A10G), ...")
    p.add_argument("--instance-count", type=int, default=1, help="1 (several instances are refused, see README)")
    p.add_argument("--volume-gb", type=int, default=30, help="disk of each instance (corpus, cache, checkpoints)")
    p.add_argument("--on-demand", action="store_true", help="no managed spot training")
    p.add_argument("--max-run-hours", type=float, default=4.0, help="the job is stopped after this training time")
    p.add_argument("--max-wait-hours", type=float, default=8.0, help="spot: run time plus waiting for capacity")
    p.add_argument("--tf-version", default=DEFAULT_TF_VERSION, help="TensorFlow version of the training image tag")
    p.add_argument("--python", default=DEFAULT_PYTHON, help="Python tag of the training image (e.g. py312)")
    p.add_argument("--image-uri", default=None, help="a training image URI (overrides --tf-version / --python)")
    p.add_argument("--dry-run", action="store_true", help="print the requests as JSON, send nothing")
    return p


def model_config(args: argparse.Namespace):
    """``--config`` (or the defaults) with the command-line overrides, as a ``ModelConfig`` (loads TensorFlow)."""
    from emotion_lib.models.config import ModelConfig

    config = ModelConfig.load(args.config) if args.config else ModelConfig()
    changes = {name: getattr(args, name) for name in ("epochs", "seed", "modalities", "encoder", "loss")}
    config = config.replace(**{name: value for name, value in changes.items() if value is not None})
    unsupported = unsupported_settings(json.loads(config.to_json()))
    if unsupported:
        raise CloudError(f"the train command has no option for these ModelConfig fields: {', '.join(unsupported)}")
    return config


def job_settings(args: argparse.Namespace) -> JobSettings:
    for value, what in ((args.bucket, "--bucket"), (args.region, "--region"), (args.role, "--role")):
        if not value:
            raise CloudError(f"{what} is required (see --help for its environment variable)")
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", args.job_name):
        raise CloudError(f"invalid job name {args.job_name!r}: up to 63 letters, digits and hyphens")
    if args.instance_count > 1:
        raise CloudError(
            "one instance only: Keras 3's fit does not run under MultiWorkerMirroredStrategy; "
            "for more GPUs take one larger instance (e.g. ml.g4dn.12xlarge, 4 x T4, mirrored strategy)"
        )
    if args.instance_count < 1 or args.volume_gb < 1 or args.max_run_hours <= 0 or args.max_wait_hours <= 0:
        raise CloudError("--instance-count, --volume-gb, --max-run-hours and --max-wait-hours must be positive")
    return JobSettings(
        job_name=args.job_name,
        region=args.region,
        bucket=args.bucket,
        prefix=args.prefix,
        role_arn=args.role,
        corpus=args.corpus,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        volume_gb=args.volume_gb,
        spot=not args.on_demand,
        max_run_seconds=int(args.max_run_hours * 3600),
        max_wait_seconds=int(args.max_wait_hours * 3600),
        image=args.image_uri or image_uri(args.region, args.tf_version, args.python),
        with_cache=args.cache_dir is not None,
    )


def plan(args: argparse.Namespace) -> tuple[JobSettings, list[dict]]:
    """The settings and every request, in order: uploads (``S3:PutObject`` of folders and the source archive),
    then ``SageMaker:CreateTrainingJob``."""
    settings = job_settings(args)
    for folder in (args.data_dir, args.cache_dir):
        if folder is not None and not folder.is_dir():
            raise CloudError(f"folder not found: {folder}")
    requests = [
        {"action": "S3:UploadFolder", "folder": str(folder), "files": sum(1 for _ in folder_files(folder)), "to": uri}
        for folder, uri in ((args.data_dir, settings.data_uri), (args.cache_dir, settings.cache_uri))
        if folder is not None
    ]
    requests.append({"action": "S3:PutObject", "what": "source archive", "to": settings.source_uri})
    request = training_job_request(settings, model_config(args))
    requests.append({"action": "SageMaker:CreateTrainingJob", "request": request})
    return settings, requests


def send(args: argparse.Namespace) -> tuple[JobSettings, str]:
    """Check region, credentials and bucket (before TensorFlow loads with the model configuration), then run the
    planned requests; returns the settings and the training job's ARN."""
    settings = job_settings(args)
    aws = session(settings.region)
    check_bucket(aws, settings.bucket, settings.region)
    settings, requests = plan(args)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for step in requests:
            if step["action"] == "S3:UploadFolder":
                count = upload_folder(aws, Path(step["folder"]), step["to"])
                print(f"uploaded {count} files to {step['to']}")
            elif step["action"] == "S3:PutObject":
                upload_bytes(aws, source_archive(), step["to"])
                print(f"uploaded the source archive to {step['to']}")
            else:
                answer = aws.client("sagemaker").create_training_job(**step["request"])
                return settings, answer["TrainingJobArn"]
    except (ClientError, BotoCoreError) as error:
        raise CloudError(f"{step['action']}: {client_error(error)}") from None
    raise CloudError("no CreateTrainingJob request in the plan")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.job_name = args.job_name or time.strftime("emotion-attention-%Y%m%d-%H%M%S", time.gmtime())
    try:
        if args.dry_run:
            print(json.dumps(plan(args)[1], indent=2))
            return 0
        settings, arn = send(args)
    except (CloudError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"started {arn}")
    print(f"follow it: aws-setup/monitor_attention_model.sh --job-name {settings.job_name} --region {settings.region}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
