"""llama.cpp's own programs (llama-server, ggml-rpc-server, llama-bench, llama-batched-bench), built
once from the llama.cpp that the pinned llama-cpp-python vendors, with the library's flags.

    python scripts/llama_tools.py [TARGET ...]     # build (once); print the folder of the binaries
    bash scripts/build-llama-server.sh              # the same, for llama-server and ggml-rpc-server

    python scripts/llama_tools.py wheel DIR         # build llama-cpp-python's wheel into DIR

The flags are ``ezchat.engine.cpu.cmake_args()`` (portable, no AMX, the RPC backend on, plus
``EZCHAT_CMAKE_ARGS``), so the tools run on this CPU and compute what the library computes.
Builds live in ``~/.cache/ezchat/llama.cpp/<version>-<variant>-<key>/`` (``$EZCHAT_LLAMA_TOOLS``
moves them), named by the same key as the library's wheel: other flags or another CPU's
features give another folder. The tests, the benchmarks and users share one build of each.

The wheel is built here too (``scripts/setup.sh`` calls ``wheel``), from the pinned sdist kept
in the cache, with its CMake tree kept in the portable build folder. The tools are then built
in that same tree, so they link the wheel's own libllama and ggml instead of compiling them a
second time (see ``_configure_step``). Without that tree (a wheel from ``$EZCHAT_WHEELHOUSE``,
or the native variant) they are built on their own from the vendored llama.cpp, statically.

Stdlib and ezchat.engine.cpu only (the latter is stdlib too): it runs before or beside anything else.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
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
    """The flags of a build: the library's own, or llama.cpp's ``-march=native`` default for
    benchmarks/build.py."""
    if variant == NATIVE:
        return ["-DGGML_NATIVE=ON"]
    return cpu.cmake_args()


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


def sdist_dir() -> Path:
    """The pinned llama-cpp-python sdist, fetched once with pip and kept unpacked: the wheel is
    built from it (in place, so that its CMake tree can be configured again for the tools)."""
    sdist = tools_root() / f"sdist-{cpu.LLAMA_CPP_PYTHON_VERSION}"
    if (sdist / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        return sdist
    sdist.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=sdist.parent) as tmp:
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
        unpacked = next(path for path in Path(tmp).glob("llama_cpp_python-*") if path.is_dir())
        shutil.rmtree(sdist, ignore_errors=True)
        unpacked.rename(sdist)
    return sdist


def source_dir() -> Path:
    """The llama.cpp that the pinned llama-cpp-python vendors."""
    return sdist_dir() / "vendor" / "llama.cpp"


def wheel_tree() -> Path:
    """The CMake tree of the wheel's build, kept for the tools (the portable build folder)."""
    return build_dir(PORTABLE) / "build"


def build_wheel(destination: Path) -> Path:
    """Build llama-cpp-python's wheel with the library's flags into ``destination``, keeping
    its CMake tree in ``wheel_tree()``; return the wheel's path."""
    sdist = sdist_dir()
    tree = wheel_tree()
    shutil.rmtree(tree, ignore_errors=True)  # a tree configured for the tools is not the wheel's
    # shlex.join, as setup.sh prints them (cpu.py cmake-args): scikit-build-core splits them so
    environ = {**os.environ, "CMAKE_ARGS": shlex.join(cpu.cmake_args()), "FORCE_CMAKE": "1"}
    destination.mkdir(parents=True, exist_ok=True)
    # --no-cache-dir: neither take a wheel pip cached under the version alone, nor leave one
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir", "--no-deps",
            f"--config-settings=build-dir={tree}", str(sdist), "-w", str(destination),
        ],
        check=True,
        env=environ,
    )  # fmt: skip
    return next(destination.glob("llama_cpp_python-*.whl"))


def _wheel_tree_source(variant: str) -> Path | None:
    """The source a kept CMake tree of the portable folder was configured from (the sdist, for
    the wheel's tree; llama.cpp itself, for tools built on their own earlier), or None where
    there is no tree to build ``variant``'s tools in."""
    cache = wheel_tree() / "CMakeCache.txt"
    if variant != PORTABLE or not cache.exists():
        return None
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("CMAKE_HOME_DIRECTORY:"):
            source = Path(line.split("=", 1)[1])
            return source if (source / "CMakeLists.txt").exists() else None
    return None


def _configure_step(variant: str) -> list[str]:
    """The cmake command that configures ``variant``'s build of the tools.

    In the wheel's tree: its build adds tools/mtmd from outside llama.cpp (llama-cpp-python's
    LLAVA_BUILD option), and llama.cpp's tools folder adds it again, so the tree is configured
    with LLAVA_BUILD off and the tools folder makes the same mtmd target in the same place. The
    wheel is packed already: nothing it holds changes."""
    source = _wheel_tree_source(variant)
    if source is not None:
        return ["cmake", "-S", str(source), "-B", str(wheel_tree()), "-DLLAVA_BUILD=OFF",
                "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON"]  # fmt: skip
    return ["cmake", "-S", str(source_dir()), "-B", str(build_dir(variant) / "build"),
            *_COMMON_ARGS, *variant_args(variant)]  # fmt: skip


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
            _configure_step(variant),
            ["cmake", "--build", str(root / "build"), "--target", *missing, "-j", jobs],
        ]
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
    try:
        if argv[:1] == ["wheel"] and len(argv) == 2:
            print(build_wheel(Path(argv[1])))
        else:
            print(ensure_built(argv or list(SERVER_TARGETS), quiet=True))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"llama_tools: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
