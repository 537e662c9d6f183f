#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint and run the tests against the real default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check ezchat tests benchmarks
.venv/bin/python -m pytest -q "$@"
