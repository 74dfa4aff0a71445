#!/usr/bin/env bash
# Upload a corpus (and its feature cache) to S3 and start a SageMaker training job of the attention model.
# Example: aws-setup/deploy_attention_model.sh --corpus crema-d --data-dir ../shared/data/crema-d \
#            --bucket my-bucket --region eu-west-1 --role arn:aws:iam::123456789012:role/SageMakerRole --dry-run
# All options: --help. The code is emotion_lib/cloud/deploy.py; boto3 comes with the `cloud` extra.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh"
exec "$PYTHON" -m emotion_lib.cloud.deploy "$@"
