"""llama.cpp's own programs (llama-server, ggml-rpc-server, llama-bench, llama-batched-bench), built
once from the llama.cpp that the pinned llama-cpp-python vendors, with the library's flags.

    python scripts/llama_tools.py [TARGET ...]     # build (once); print the folder of the binaries
    bash scripts/build-llama-server.sh              # the same, for llama-server and ggml-rpc-server

The flags are ``ezchat.engine.cpu.cmake_args()`` (portable, no AMX, plus ``EZCHAT_CMAKE_ARGS``) with the
RPC backend on, so the tools run on this CPU and compute what the library computes. Builds live
in ``~/.cache/ezchat/llama.cpp/<version>-<variant>-<key>/`` (``$EZCHAT_LLAMA_TOOLS`` moves them),
named by the same key as the library's wheel: other flags or another CPU's features give
another folder. The tests, the benchmarks and users share one build of each.

Stdlib and ezchat.engine.cpu only (the latter is stdlib too): it runs before or beside anything else.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _load_cpu_module():
    """ezchat/engine/cpu.py by its path: no package import (which would load llama_cpp), and nothing
    else of ezchat/ put on sys.path."""
    spec = importlib.util.spec_from_file_location(
        "_ezchat_cpu", REPO / "ezchat" / "engine" / "cpu.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


cpu = _load_cpu_module()

PORTABLE = "portable"
NATIVE = "native"
SERVER_TARGETS = ("llama-server", "ggml-rpc-server")

# What every build here leaves out: no downloads (no network at run time), no tests, static
# binaries so a build folder can move.
_COMMON_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
]


def variant_args(variant: str = PORTABLE) -> list[str]:
    """The flags of a build: the library's own (plus RPC, which adds a backend and changes no
    CPU kernel), or llama.cpp's ``-march=native`` default for benchmarks/build.py."""
    if variant == NATIVE:
        return ["-DGGML_NATIVE=ON"]
    return [*cpu.cmake_args(), "-DGGML_RPC=ON"]


def tools_root() -> Path:
    override = os.environ.get("EZCHAT_LLAMA_TOOLS")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ezchat" / "llama.cpp"


def build_dir(variant: str = PORTABLE) -> Path:
    key = cpu.build_key(variant_args(variant))
    return tools_root() / f"{cpu.LLAMA_CPP_PYTHON_VERSION}-{variant}-{key}"


def binary(name: str, variant: str = PORTABLE) -> Path:
    return build_dir(variant) / "build" / "bin" / name


def source_dir() -> Path:
    """The vendored llama.cpp of the pinned llama-cpp-python sdist, fetched once with pip."""
    source = tools_root() / f"src-{cpu.LLAMA_CPP_PYTHON_VERSION}"
    if (source / "CMakeLists.txt").exists():
        return source
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                ":all:", f"llama-cpp-python=={cpu.LLAMA_CPP_PYTHON_VERSION}", "-d", tmp,
            ],
            check=True,
        )  # fmt: skip
        archive = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        vendored = next(Path(tmp).glob("llama_cpp_python-*/vendor/llama.cpp"))
        partial = source.with_name(source.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(vendored, partial)
        shutil.rmtree(source, ignore_errors=True)
        partial.rename(source)
    return source


def ensure_built(
    targets: tuple[str, ...] | list[str], variant: str = PORTABLE, quiet: bool = True
) -> Path:
    """Build whichever of ``targets`` are missing; return the folder of the binaries.

    Raises ``RuntimeError`` with the build's last lines if cmake fails."""
    missing = [name for name in targets if not binary(name, variant).exists()]
    bin_dir = build_dir(variant) / "build" / "bin"
    if not missing:
        return bin_dir
    root = build_dir(variant)
    root.mkdir(parents=True, exist_ok=True)
    log = root / "build.log"
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
    started = time.monotonic()
    with log.open("a") as out:
        steps = [
            ["cmake", "-S", str(source_dir()), "-B", str(root / "build"), *_COMMON_ARGS,
             *variant_args(variant)],
            ["cmake", "--build", str(root / "build"), "--target", *missing, "-j", jobs],
        ]  # fmt: skip
        for step in steps:
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            done = subprocess.run(step, stdout=out if quiet else None, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"building {' '.join(missing)} failed:\n" + "\n".join(tail))
        out.write(f"built {' '.join(missing)} in {time.monotonic() - started:.0f} s\n")
    return bin_dir


def main(argv: list[str]) -> int:
    targets = argv or list(SERVER_TARGETS)
    try:
        print(ensure_built(targets, quiet=True))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"llama_tools: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
