"""Training on SageMaker, offline: the deploy and monitor scripts against a moto server on loopback, the
container's translation of SageMaker's environment into the ``train`` command, and the cost estimate.

Nothing here reaches AWS: every boto3 call goes to ``AWS_ENDPOINT_URL`` (a ``ThreadedMotoServer`` on 127.0.0.1),
instance metadata lookups are switched off, and the credentials are moto's dummies.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import emotion_lib  # noqa: F401  (openSMILE before TensorFlow)
from emotion_lib.cloud.job import METRIC_DEFINITIONS, JobSettings, config_hyperparameters, image_uri
from emotion_lib.cloud.prices import cost_estimate, format_cost
from emotion_lib.cloud.sagemaker_env import (
    CHECKPOINT_DIR,
    SageMakerEnvError,
    hyperparameters,
    publish_model,
    training_run,
)

boto3 = pytest.importorskip("boto3", reason="boto3 is the cloud extra (make setup installs it)")
moto_server = pytest.importorskip("moto.server", reason="moto is the cloud extra (make setup installs it)")

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "aws-setup" / "deploy_attention_model.sh"
MONITOR = REPO / "aws-setup" / "monitor_attention_model.sh"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _aws_environment(endpoint: str | None, credentials: bool = True) -> dict[str, str]:
    """The process environment without any AWS setting of the machine, pointed at ``endpoint``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    if credentials:
        env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return env


@pytest.fixture
def aws(endpoint, monkeypatch):
    """This process's environment pointed at moto (for the boto3 clients of the test itself)."""
    for key in [key for key in os.environ if key.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in _aws_environment(endpoint).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    return boto3.session.Session(region_name=REGION)


def _bucket(aws, name: str, region: str = REGION) -> str:
    aws.client("s3", region_name=region).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
    )
    return name


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _run(script: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=300)


def _deploy_args(tmp_path: Path, bucket: str, job: str, region: str = REGION) -> list[str]:
    corpus = _folder(tmp_path / "corpus", {"AudioWAV/1001_DFA_ANG_XX.wav": b"RIFF", "VideoFlash/1001.flv": b"FLV"})
    cache = _folder(tmp_path / "cache", {"manifest.json": b"{}", "ab/1001_DFA_ANG_XX.npz": b"npz"})
    return [
        *("--corpus", "crema-d", "--data-dir", str(corpus), "--cache-dir", str(cache), "--bucket", bucket),
        *("--region", region, "--role", ROLE, "--job-name", job, "--epochs", "7", "--seed", "3"),
        *("--modalities", "audio", "--instance-type", "ml.g5.xlarge", "--max-run-hours", "2"),
    ]


# ------------------------------------------------------------------------------------- deploy against moto


def test_deploy_uploads_the_data_and_starts_the_training_job_moto_records(aws, endpoint, tmp_path):
    bucket = _bucket(aws, "emotion-deploy")
    result = _run(DEPLOY, _deploy_args(tmp_path, bucket, "attention-1"), _aws_environment(endpoint))
    assert result.returncode == 0, result.stderr
    assert "started arn:aws:sagemaker:eu-west-1:" in result.stdout

    s3 = aws.client("s3")
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {
        "emotion-lib/data/crema-d/corpus/AudioWAV/1001_DFA_ANG_XX.wav",
        "emotion-lib/data/crema-d/corpus/VideoFlash/1001.flv",
        "emotion-lib/data/crema-d/cache/manifest.json",
        "emotion-lib/data/crema-d/cache/ab/1001_DFA_ANG_XX.npz",
        "emotion-lib/jobs/attention-1/source/sourcedir.tar.gz",
    } == keys
    archive = s3.get_object(Bucket=bucket, Key="emotion-lib/jobs/attention-1/source/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert {"sagemaker_entry.py", "emotion_lib/cli.py", "emotion_lib/cloud/sagemaker_env.py"} <= names
    assert "keras==3.15.1" in requirements.splitlines() and "tensorflow" not in requirements

    job = aws.client("sagemaker").describe_training_job(TrainingJobName="attention-1")
    assert job["AlgorithmSpecification"]["TrainingImage"] == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-training:2.19.0-gpu-py312"
    )
    assert job["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 8 * 3600}
    assert job["CheckpointConfig"] == {
        "S3Uri": f"s3://{bucket}/emotion-lib/jobs/attention-1/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{bucket}/emotion-lib/jobs/attention-1/output"
    assert job["RoleArn"] == ROLE
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels == {
        "train": f"s3://{bucket}/emotion-lib/data/crema-d/corpus",
        "cache": f"s3://{bucket}/emotion-lib/data/crema-d/cache",
    }
    hps = job["HyperParameters"]
    assert (hps["epochs"], hps["seed"], hps["modalities"], hps["corpus"]) == ("7", "3", '["audio"]', '"crema-d"')
    assert hps["sagemaker_program"] == '"sagemaker_entry.py"'
    assert hps["sagemaker_submit_directory"] == f'"s3://{bucket}/emotion-lib/jobs/attention-1/source/sourcedir.tar.gz"'
    assert hps["checkpoint_dir"] == '"/opt/ml/checkpoints"'

    # What the container would run with these hyperparameters (SageMaker passes them as SM_HPS).
    user = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    run = training_run({"SM_HPS": json.dumps(user), "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train"})
    assert run.argv[:5] == ["train", "--corpus", "crema-d", "--data-dir", "/opt/ml/input/data/train"]
    assert run.argv[5:7] == ["--output-dir", "/opt/ml/checkpoints"]
    assert " --epochs 7 --seed 3 --modalities audio --encoder bilstm --loss focal" in " ".join(run.argv)


def test_dry_run_prints_every_request_and_sends_nothing(tmp_path, capsys, monkeypatch):
    from emotion_lib.cloud import deploy

    for key in [key for key in os.environ if key.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: a request would fail
    args = _deploy_args(tmp_path, "no-such-bucket", "attention-dry") + ["--on-demand", "--volume-gb", "50"]
    assert deploy.main([*args, "--dry-run"]) == 0
    requests = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in requests] == ["S3:UploadFolder", "S3:UploadFolder", "S3:PutObject"] + [
        "SageMaker:CreateTrainingJob"
    ]
    assert [r.get("files") for r in requests[:2]] == [2, 2]
    job = requests[-1]["request"]
    assert job["EnableManagedSpotTraining"] is False and "MaxWaitTimeInSeconds" not in job["StoppingCondition"]
    assert job["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS


# ------------------------------------------------------------------------------- one-line errors, each case


def _one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr


def test_deploy_without_credentials_says_so(endpoint, tmp_path):
    env = _aws_environment(endpoint, credentials=False)
    _one_line_error(_run(DEPLOY, _deploy_args(tmp_path, "emotion-x", "j1"), env), "no AWS credentials")


def test_deploy_without_the_bucket_says_so(aws, endpoint, tmp_path):
    result = _run(DEPLOY, _deploy_args(tmp_path, "emotion-missing", "j2"), _aws_environment(endpoint))
    _one_line_error(result, "S3 bucket 'emotion-missing' does not exist")


def test_deploy_with_an_unknown_region_says_so(endpoint, tmp_path):
    result = _run(DEPLOY, _deploy_args(tmp_path, "emotion-x", "j3", region="mars-north-1"), _aws_environment(endpoint))
    _one_line_error(result, "unknown AWS region 'mars-north-1'")


def test_deploy_with_the_bucket_in_another_region_says_so(aws, endpoint, tmp_path):
    bucket = _bucket(aws, "emotion-elsewhere", region="us-west-2")
    result = _run(DEPLOY, _deploy_args(tmp_path, bucket, "j4", region=REGION), _aws_environment(endpoint))
    _one_line_error(result, "is in us-west-2, the job's region is eu-west-1")


def test_deploy_refuses_a_bad_job_name_and_missing_settings(tmp_path, capsys, monkeypatch):
    from emotion_lib.cloud import deploy

    monkeypatch.delenv("SAGEMAKER_ROLE_ARN", raising=False)
    args = _deploy_args(tmp_path, "emotion-x", "bad_name!")
    assert deploy.main([*args, "--dry-run"]) == 2
    assert "invalid job name 'bad_name!'" in capsys.readouterr().err
    without_role = [a for a in _deploy_args(tmp_path, "emotion-x", "j5") if a not in ("--role", ROLE)]
    assert deploy.main([*without_role, "--dry-run"]) == 2
    assert "--role is required" in capsys.readouterr().err


def test_monitor_of_an_unknown_job_says_so(aws, endpoint):
    result = _run(MONITOR, ["--job-name", "no-such-job", "--region", REGION], _aws_environment(endpoint))
    _one_line_error(result, "no-such-job")


# ------------------------------------------------------------------------------------ monitor against moto


def _finished_job(aws, tmp_path: Path, bucket: str, job: str) -> None:
    """A job moto knows, its log stream with epoch lines and a model archive where SageMaker puts it."""
    from emotion_lib.cloud.job import training_job_request
    from emotion_lib.models.config import ModelConfig

    settings = JobSettings(job, REGION, bucket, "emotion-lib", ROLE, "crema-d", image=image_uri(REGION))
    aws.client("sagemaker").create_training_job(**training_job_request(settings, ModelConfig(epochs=3)))
    logs = aws.client("logs")
    group, stream = "/aws/sagemaker/TrainingJobs", f"{job}/algo-1-1764590000"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    lines = [
        f"epoch {n}/3: loss {1.5 - n / 10:.4f}, val_loss {1.6 - n / 10:.4f}, val_accuracy 0.{n}00, lr 0.001, 2.0 s"
        for n in (1, 2, 3)
    ] + ["model written to /opt/ml/model"]
    start = int(datetime.now(UTC).timestamp() * 1000)
    events = [{"timestamp": start + i, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    model = _folder(tmp_path / "model", {"model.keras": b"weights", "config.json": b"{}"})
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        for path in sorted(model.iterdir()):
            tar.add(path, arcname=path.name)
    artifacts = aws.client("sagemaker").describe_training_job(TrainingJobName=job)["ModelArtifacts"]
    target_bucket, key = artifacts["S3ModelArtifacts"][5:].split("/", 1)
    aws.client("s3").put_object(Bucket=target_bucket, Key=key, Body=packed.getvalue())


def test_monitor_reports_status_metrics_log_cost_and_downloads_the_model(aws, endpoint, tmp_path):
    bucket = _bucket(aws, "emotion-monitor")
    _finished_job(aws, tmp_path, bucket, "attention-mon")
    target = tmp_path / "downloaded"
    args = ["--job-name", "attention-mon", "--region", REGION, "--lines", "2", "--download", str(target)]
    result = _run(MONITOR, args, _aws_environment(endpoint))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "job attention-mon: Completed" in out
    assert "instances: 1 x ml.g4dn.xlarge (managed spot)" in out
    assert "epoch 3, loss 1.2, val_loss 1.3, val_accuracy 0.3" in out
    assert "epoch 1, loss 1.4" in out  # the last five epochs, here all three
    assert "cost so far: ~$" in out and "$0.736/h" in out and "an estimate" in out
    assert f"model: s3://{bucket}/emotion-lib/jobs/attention-mon/output/attention-mon/output/model.tar.gz" in out
    tail = out.split("log tail")[1].splitlines()[1:]
    assert [line.strip() for line in tail][:2] == [
        "epoch 3/3: loss 1.2000, val_loss 1.3000, val_accuracy 0.300, lr 0.001, 2.0 s",
        "model written to /opt/ml/model",
    ]
    assert (target / "model.keras").read_bytes() == b"weights" and (target / "config.json").is_file()
    assert not (target / "model.tar.gz").exists()


# ------------------------------------------------------------------------------------------ cost estimate


def test_cost_is_billable_seconds_times_the_on_demand_price():
    job = {"ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 2}, "BillableTimeInSeconds": 1800}
    estimate = cost_estimate(job)
    assert estimate["usd"] == pytest.approx(0.5 * 0.736 * 2)
    assert "~$0.74 (1800 s x 2 instance(s) x $0.736/h" in format_cost(estimate)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    running = {"ResourceConfig": {"InstanceType": "ml.p3.2xlarge"}, "TrainingStartTime": start}
    running["LastModifiedTime"] = start + timedelta(hours=2)
    assert cost_estimate(running)["usd"] == pytest.approx(2 * 3.825)
    assert "wall-clock" in cost_estimate(running)["basis"]
    unknown = cost_estimate({"ResourceConfig": {"InstanceType": "ml.x1.huge"}, "BillableTimeInSeconds": 60})
    assert unknown["usd"] is None and "no price" in format_cost(unknown)


# ------------------------------------------------------------------ the container side: env -> train command


def test_hyperparameters_from_sm_hps_and_arguments():
    env = {"SM_HPS": json.dumps({"epochs": 5, "modalities": ["audio", "video"], "corpus": "savee"})}
    assert hyperparameters(env, ["--epochs", "9", "--encoder", "transformer"]) == {
        "epochs": 9,
        "modalities": ["audio", "video"],
        "corpus": "savee",
        "encoder": "transformer",
    }
    with pytest.raises(SageMakerEnvError, match="pairs"):
        hyperparameters({}, ["--epochs"])


def test_training_run_maps_sagemaker_layout_to_the_train_command(tmp_path):
    from emotion_lib.models.config import ModelConfig

    hps = config_hyperparameters(ModelConfig(epochs=2, seed=4, encoder="transformer", loss="crossentropy"))
    hps |= {"corpus": '"synthetic"', "checkpoint_dir": json.dumps(str(tmp_path / "ckpt"))}
    env = {
        "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
        "SM_CHANNEL_CACHE": "/opt/ml/input/data/cache",
        "SM_MODEL_DIR": str(tmp_path / "model"),
    }
    run = training_run(env, [item for name, value in hps.items() for item in (f"--{name}", value)])
    assert run.argv == [
        *("train", "--corpus", "synthetic", "--data-dir", "/opt/ml/input/data/train"),
        *("--output-dir", str(tmp_path / "ckpt"), "--epochs", "2", "--seed", "4"),
        *("--modalities", "audio", "video", "--encoder", "transformer", "--loss", "crossentropy"),
    ]
    assert run.environment == {"EMOTION_CACHE": "/opt/ml/input/data/cache"}
    assert run.publish_to == tmp_path / "model"
    _folder(tmp_path / "ckpt", {"bundle/model.keras": b"m"})
    assert publish_model(run) == tmp_path / "model"
    assert (tmp_path / "model" / "bundle" / "model.keras").read_bytes() == b"m"
    assert training_run({"SM_CHANNEL_TRAIN": "/d", "SM_HPS": '{"corpus": "savee"}'}).output_dir == Path(CHECKPOINT_DIR)


def test_training_run_refuses_what_the_train_command_cannot_take():
    env = {"SM_CHANNEL_TRAIN": "/d"}
    with pytest.raises(SageMakerEnvError, match="no option for: dropout, learning_rate"):
        training_run(env, ["--corpus", "savee", "--learning_rate", "0.01", "--dropout", "0.5", "--batch_size", "32"])
    with pytest.raises(SageMakerEnvError, match="'train' input channel"):
        training_run({}, ["--corpus", "savee"])
    with pytest.raises(SageMakerEnvError, match="'corpus'"):
        training_run(env, [])


def test_several_instances_are_refused(tmp_path, capsys):
    from emotion_lib.cloud import deploy

    assert deploy.main([*_deploy_args(tmp_path, "emotion-x", "j6"), "--instance-count", "2", "--dry-run"]) == 2
    assert "one instance only" in capsys.readouterr().err


def test_image_uri_follows_the_region():
    assert image_uri("us-east-1") == "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.19.0-gpu-py312"
    assert image_uri("af-south-1", "2.18.0", "py310").startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert image_uri("cn-north-1").split("/")[0].endswith(".amazonaws.com.cn")


def test_entry_script_runs_a_train_command_and_publishes_its_output_folder(tmp_path, monkeypatch):
    """The entry script's glue with a stand-in ``train`` command (the real one is exercised by the slow test below):
    SageMaker's arguments reach the command, the cache channel becomes ``EMOTION_CACHE`` and the output folder is
    copied to ``SM_MODEL_DIR``."""
    import runpy

    from emotion_lib import cli

    seen = {}

    def arguments(parser):
        for option in ("--corpus", "--data-dir", "--output-dir", "--epochs", "--seed", "--encoder", "--loss"):
            parser.add_argument(option)
        parser.add_argument("--modalities", nargs="+")

    def run(args):
        seen.update(vars(args), cache=os.environ.get("EMOTION_CACHE"))
        _folder(Path(args.output_dir), {"bundle/model.keras": b"weights"})
        return 0

    monkeypatch.setitem(cli.COMMANDS, "train", cli.Command("stand-in", arguments, run, ("--corpus synthetic",)))
    monkeypatch.setenv("EMOTION_CACHE", os.environ.get("EMOTION_CACHE", ""))  # restored after the test
    opt = tmp_path / "opt" / "ml"
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(opt / "input" / "data" / "train"))
    monkeypatch.setenv("SM_CHANNEL_CACHE", str(opt / "input" / "data" / "cache"))
    monkeypatch.setenv("SM_MODEL_DIR", str(opt / "model"))
    monkeypatch.setenv("SM_HPS", json.dumps({"corpus": "savee", "epochs": 2, "modalities": ["audio"]}))
    hps_args = ["--corpus", '"savee"', "--epochs", "2", "--modalities", '["audio"]']
    hps_args += ["--checkpoint_dir", json.dumps(str(opt / "checkpoints"))]
    monkeypatch.setattr(sys, "argv", ["sagemaker_entry.py", *hps_args])
    with pytest.raises(SystemExit) as finished:
        runpy.run_path(str(REPO / "aws-setup" / "sagemaker_entry.py"), run_name="__main__")
    assert finished.value.code == 0
    assert (seen["corpus"], seen["epochs"], seen["modalities"]) == ("savee", "2", ["audio"])
    assert (seen["data_dir"], seen["output_dir"]) == (str(opt / "input" / "data" / "train"), str(opt / "checkpoints"))
    assert seen["cache"] == str(opt / "input" / "data" / "cache")
    assert (opt / "model" / "bundle" / "model.keras").read_bytes() == b"weights"


# --------------------------------------------------------------- end to end in SageMaker's folder layout


@pytest.mark.slow
def test_entry_point_trains_one_epoch_in_the_sagemaker_layout(tmp_path, corpus_4_actors):
    """A simulated ``/opt/ml`` under ``tmp_path`` (the corpus and cache channels, the checkpoint folder, the model
    folder) and the entry script run as SageMaker runs it: a process with SageMaker's environment and the
    hyperparameters as ``--name value`` arguments."""
    from emotion_lib.cli import COMMANDS

    if "train" not in COMMANDS:
        pytest.skip("the `train` command is not on this branch yet (python -m emotion_lib train); merge it first")
    opt = tmp_path / "opt" / "ml"
    # 4 actors (test, validation and two training actors) and the voice only: the layout is under test, not the model
    corpus = Path(shutil.copytree(corpus_4_actors, opt / "input" / "data" / "train"))
    (opt / "input" / "data" / "cache").mkdir()
    env = _aws_environment(None, credentials=False) | {
        "SM_CHANNEL_TRAIN": str(corpus),
        "SM_CHANNEL_CACHE": str(opt / "input" / "data" / "cache"),
        "SM_MODEL_DIR": str(opt / "model"),
        "SM_HPS": json.dumps({"corpus": "synthetic", "epochs": 1, "modalities": ["audio"]}),
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    script = REPO / "aws-setup" / "sagemaker_entry.py"
    args = ["--corpus", '"synthetic"', "--epochs", "1", "--modalities", '["audio"]']
    args += ["--checkpoint_dir", json.dumps(str(opt / "checkpoints"))]
    result = subprocess.run(
        [sys.executable, str(script), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert any((opt / "checkpoints").iterdir()), "the trainer wrote nothing into the checkpoint (resume) folder"
    written = sorted(path.relative_to(opt / "model").as_posix() for path in (opt / "model").rglob("*"))
    assert any(name.endswith(".keras") for name in written), written
    assert any((opt / "input" / "data" / "cache").iterdir()), "features were not cached in the cache channel"


# ------------------------------------------------------------------------------------------------------ pins


def _name(requirement: str) -> str:
    return requirement.split("[")[0].split("==")[0].strip().lower().replace("_", "-")


def test_the_cloud_extra_is_pinned_and_installed_by_make_setup():
    import tomllib

    pins = {
        _name(line): line.split("==")[1].strip()
        for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["cloud"]
    assert {_name(r): r.split("==")[1] for r in extra} == {_name(r): pins[_name(r)] for r in extra}
    listed = [line.strip() for line in (REPO / "requirements" / "cloud.txt").read_text().splitlines()]
    listed = [_name(line) for line in listed if line and not line.startswith("#")]
    assert {_name(r) for r in extra} <= set(listed) and set(listed) <= set(pins)
    makefile = (REPO / "Makefile").read_text()
    assert "--no-deps -c requirements/constraints.txt -r requirements/cloud.txt" in makefile
