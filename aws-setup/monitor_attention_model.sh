#!/usr/bin/env bash
# Status, last epochs' metrics, log tail, cost estimate and model location of a SageMaker training job;
# --download DIR fetches and unpacks the finished model.
# Example: aws-setup/monitor_attention_model.sh --job-name emotion-attention-20261201-120000 --region eu-west-1
# All options: --help. The code is emotion_lib/cloud/monitor.py; boto3 comes with the `cloud` extra.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
exec "$PYTHON" -m emotion_lib.cloud.monitor "$@"
