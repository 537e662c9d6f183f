#!/usr/bin/env bash
# Build llama.cpp's llama-server and its RPC worker (ggml-rpc-server) once, with the same portable, no-AMX flags as
# the library (ezchat/engine/cpu.py, plus EZCHAT_CMAKE_ARGS), from the llama.cpp that the pinned
# llama-cpp-python vendors; then print the folder that holds them. A second run builds nothing.
#
#   bin=$(bash scripts/build-llama-server.sh) && "$bin/llama-server" -m model.gguf --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
exec "$py" scripts/llama_tools.py llama-server ggml-rpc-server
