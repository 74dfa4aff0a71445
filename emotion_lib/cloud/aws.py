"""AWS access for the cloud scripts: one boto3 session, checks with one-line errors, S3 upload and download.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_S3`` etc.), which is how the tests point every call at a
local moto server. boto3 is the optional ``cloud`` extra; it is imported only here and only when a script runs.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from emotion_lib.paths import PACKAGE_DIR, REPO_ROOT

ENTRY_SOURCE = REPO_ROOT / "aws-setup" / "sagemaker_entry.py"
"""The script SageMaker runs (it calls the command line, so it lives outside the library's layers)."""


class CloudError(RuntimeError):
    """A problem the user can fix (credentials, bucket, region, job name); its message is one line."""


def session(region: str):
    """A boto3 session for ``region``, after checking that the region exists and that credentials are set."""
    try:
        import boto3
    except ImportError:
        raise CloudError("boto3 is not installed: pip install -e '.[cloud]' (or make setup)") from None
    known = boto3.session.Session().get_available_regions("sagemaker")
    if region not in known:
        raise CloudError(f"unknown AWS region {region!r} for SageMaker (e.g. {', '.join(sorted(known)[:4])}, ...)")
    aws = boto3.session.Session(region_name=region)
    if aws.get_credentials() is None:
        raise CloudError(
            "no AWS credentials: run `aws configure`, or set AWS_PROFILE, "
            "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return aws


def client_error(error: Exception) -> str:
    """The AWS error code and message of a botocore ``ClientError`` (else the exception text), on one line."""
    response = getattr(error, "response", None) or {}
    detail = response.get("Error", {})
    text = f"{detail.get('Code', type(error).__name__)}: {detail.get('Message', error)}" if detail else str(error)
    return " ".join(text.split())


def check_bucket(aws, bucket: str, region: str) -> None:
    """``bucket`` exists, is reachable and is in ``region`` (SageMaker reads and writes S3 in its own region)."""
    from botocore.exceptions import ClientError

    try:
        head = aws.client("s3").head_bucket(Bucket=bucket)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            create = f"aws s3 mb s3://{bucket} --region {region}"
            raise CloudError(f"S3 bucket {bucket!r} does not exist: create it with {create}") from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise CloudError(f"S3 bucket {bucket!r} is not accessible with these credentials") from None
        raise CloudError(f"S3 bucket {bucket!r}: {client_error(error)}") from None
    headers = head.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    where = head.get("BucketRegion") or headers.get("x-amz-bucket-region")
    if where and where != region:
        raise CloudError(f"S3 bucket {bucket!r} is in {where}, the job's region is {region}: use --region {where}")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise CloudError(f"not an s3://bucket/key address: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def folder_files(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every file under ``folder`` with its POSIX path relative to it (sorted; caches of Python skipped)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path, path.relative_to(folder).as_posix()


def upload_folder(aws, folder: Path, uri: str) -> int:
    """Upload every file of ``folder`` under the S3 prefix ``uri``; returns the number of files."""
    if not folder.is_dir():
        raise CloudError(f"folder not found: {folder}")
    bucket, prefix = split_s3(uri.rstrip("/") + "/")
    s3 = aws.client("s3")
    count = 0
    for path, name in folder_files(folder):
        s3.upload_file(str(path), bucket, prefix + name)
        count += 1
    if not count:
        raise CloudError(f"no files to upload in {folder}")
    return count


def source_archive() -> bytes:
    """``sourcedir.tar.gz`` for SageMaker's training toolkit: the entry script, the ``emotion_lib`` package,
    ``requirements.txt`` (the project's pinned dependencies; TensorFlow comes with the image)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(ENTRY_SOURCE, arcname=ENTRY_SOURCE.name)
        for path, name in folder_files(PACKAGE_DIR):
            tar.add(path, arcname=f"emotion_lib/{name}")
        text = requirements_text().encode()
        info = tarfile.TarInfo("requirements.txt")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return buffer.getvalue()


def requirements_text() -> str:
    """The project's pinned runtime dependencies (``pyproject.toml``), one a line, for the container's pip."""
    import tomllib

    pyproject = REPO_ROOT / "pyproject.toml"
    if not pyproject.is_file():
        raise CloudError(f"pyproject.toml not found in {REPO_ROOT}: run the deploy script from a checkout")
    return "\n".join(tomllib.loads(pyproject.read_text())["project"]["dependencies"]) + "\n"


def upload_bytes(aws, data: bytes, uri: str) -> None:
    bucket, key = split_s3(uri)
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def download_file(aws, uri: str, target: Path) -> Path:
    """Download one S3 object to ``target``."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        aws.client("s3").download_file(bucket, key, str(target))
    except ClientError as error:
        raise CloudError(f"cannot download {uri}: {client_error(error)}") from None
    return target
