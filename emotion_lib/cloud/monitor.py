"""``aws-setup/monitor_attention_model.sh``: the status of a SageMaker training job, its last epochs' metrics, the
log tail, the cost so far (an estimate) and where the model lands; ``--download`` fetches and unpacks the model.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tarfile
from pathlib import Path

from emotion_lib.cloud.aws import CloudError, client_error, download_file, session
from emotion_lib.cloud.job import METRIC_DEFINITIONS
from emotion_lib.cloud.prices import cost_estimate, format_cost

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
"""CloudWatch log group of SageMaker training jobs; each instance writes the stream ``<job>/algo-<n>-<time>``."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitor_attention_model.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--job-name", required=True)
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument("--lines", type=int, default=20, help="log lines to show")
    p.add_argument("--epochs", type=int, default=5, help="last epochs to show")
    p.add_argument("--download", type=Path, default=None, metavar="DIR", help="fetch and unpack the finished model")
    return p


def log_lines(aws, job_name: str, limit: int) -> list[str]:
    """The last ``limit`` lines of the job's first log stream (``[]`` before the job writes any)."""
    from botocore.exceptions import ClientError

    logs = aws.client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise
    if not streams:
        return []
    name = sorted(stream["logStreamName"] for stream in streams)[0]
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=name, limit=10_000, startFromHead=False)
    return [event["message"].rstrip() for event in events["events"]][-limit:] if limit else []


def epoch_metrics(lines: list[str]) -> list[dict[str, float]]:
    """The metrics of each epoch line of the log, parsed with the job's metric definitions."""
    rows = []
    for line in lines:
        row = {}
        for metric in METRIC_DEFINITIONS:
            found = re.search(metric["Regex"], line)
            if found:
                row[metric["Name"]] = float(found.group(1))
        if "epoch" in row:
            rows.append(row)
    return rows


def report(aws, job_name: str, lines: int, epochs: int) -> tuple[str, dict]:
    """The text report of ``job_name`` and its ``DescribeTrainingJob`` answer."""
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    out = [f"job {job_name}: {job['TrainingJobStatus']} ({job.get('SecondaryStatus', '?')})"]
    if job.get("FailureReason"):
        out.append(f"failure: {job['FailureReason']}")
    resources = job.get("ResourceConfig", {})
    spot = "managed spot" if job.get("EnableManagedSpotTraining") else "on-demand"
    out.append(f"instances: {resources.get('InstanceCount')} x {resources.get('InstanceType')} ({spot})")
    final = job.get("FinalMetricDataList") or []
    if final:
        out.append("final metrics: " + ", ".join(f"{m['MetricName']} {m['Value']:g}" for m in final))
    tail = log_lines(aws, job_name, 10_000)
    rows = epoch_metrics(tail)[-epochs:]
    if rows:
        out.append(f"last {len(rows)} epoch(s) (from the log):")
    for row in rows:
        out.append("  " + ", ".join(f"{name} {value:g}" for name, value in row.items()))
    out.append(f"cost so far: {format_cost(cost_estimate(job))}")
    out.append(f"model: {job.get('ModelArtifacts', {}).get('S3ModelArtifacts', '(not yet written)')}")
    out.append(f"checkpoints: {job.get('CheckpointConfig', {}).get('S3Uri', '(none)')}")
    out.append(f"log tail ({LOG_GROUP}):" if tail else "log: no log stream yet")
    out.extend("  " + line for line in tail[-lines:])
    return "\n".join(out), job


def download(aws, job: dict, target: Path) -> Path:
    """Download ``model.tar.gz`` of a completed job into ``target`` and unpack it there."""
    if job["TrainingJobStatus"] != "Completed":
        raise CloudError(f"job {job['TrainingJobName']} is {job['TrainingJobStatus']}: its model is not written yet")
    archive = download_file(aws, job["ModelArtifacts"]["S3ModelArtifacts"], target / "model.tar.gz")
    try:
        with tarfile.open(archive) as tar:
            if not hasattr(tarfile, "data_filter"):  # Python < 3.11.4 cannot refuse unsafe members
                raise CloudError("unpacking needs Python 3.11.4 or later (tarfile's data filter)")
            tar.extractall(target, filter="data")
    except tarfile.TarError as error:
        raise CloudError(f"{archive} is not a readable tar.gz archive: {error}") from None
    archive.unlink()
    return target


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if not args.region:
            raise CloudError("--region is required (or AWS_REGION)")
        aws = session(args.region)
    except CloudError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        text, job = report(aws, args.job_name, args.lines, args.epochs)
        print(text)
        if args.download:
            print(f"model unpacked in {download(aws, job, args.download)}")
    except CloudError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: job {args.job_name}: {client_error(error)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
