#!/usr/bin/env bash
# Builds what make test-lambda needs, into bin/ (kept between runs):
#   bin/aws-lambda-rie   AWS's Lambda runtime interface emulator, built from
#                        its Go module at a pinned pseudo-version;
#   bin/lambda-venv      a Python venv with awslambdaric and Powertools for
#                        AWS Lambda (with its Avro extra), from PyPI;
#   bin/lambda-gofn      the Go test function (test/lambda/gofn), built with
#                        aws-lambda-go.
# With the argument "go" (make bench's Lambda section), only the emulator
# and the Go function: no venv, nothing from PyPI.
set -euo pipefail
only=${1:-}
cd "$(dirname "$0")/../.."
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
mkdir -p bin
if [ ! -x bin/aws-lambda-rie ] || [ "$(cat bin/aws-lambda-rie.version 2>/dev/null)" != "$RIE_VERSION" ]; then
  GOBIN="$PWD/bin" go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION"
  echo "$RIE_VERSION" > bin/aws-lambda-rie.version
fi
if [ "$only" != go ] && { [ ! -x bin/lambda-venv/bin/python ] || ! bin/lambda-venv/bin/python -c 'import awslambdaric, aws_lambda_powertools.utilities.kafka, avro' 2>/dev/null; }; then
  python3 -m venv bin/lambda-venv
  bin/lambda-venv/bin/pip install -q -r scripts/lambda/requirements.txt
fi
if [ -d test/lambda/gofn ]; then
  (cd test/lambda/gofn && go build -o ../../../bin/lambda-gofn .)
fi
