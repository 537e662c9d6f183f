#!/usr/bin/env bash
# Set up (scripts/setup.sh), build llama.cpp's llama-server and ggml-rpc-server once (the remote
# backend's tests run against them), then lint and run the tests against the real default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
bin=$(bash scripts/build-llama-server.sh)
echo "test.sh: llama-server and ggml-rpc-server in $bin ($(( $(date +%s) - start )) s)"
.venv/bin/ruff check ezchat tests benchmarks scripts
.venv/bin/ruff format --check ezchat tests benchmarks scripts
.venv/bin/python -m pytest -q "$@"
