"""The CPU's own instruction sets, the llama.cpp build flags that match them, and the build's key.

llama-cpp-python's default build passes ``-march=native``. That bakes in whatever the compiler
sees, AMX included, and ggml's AMX kernels die with SIGILL on the first decode on some Intel
Xeons. A native wheel is also only right for the CPU it was built on, yet pip caches it under
the package version alone. So ezchat builds with ``GGML_NATIVE=OFF`` and names every x86
instruction set explicitly: the ones this CPU reports, minus AMX unless the user asks for it.

This module is stdlib only, and runs as a script: ``scripts/setup.sh`` calls it before anything
else is installed, and ``ezchat doctor`` / ``ezchat info`` import it. One table, ``X86_FEATURES``,
maps a ggml option to the ``/proc/cpuinfo`` flags it needs; the rest reads it.

    python ezchat/engine/cpu.py cmake-args   # the CMAKE_ARGS for this CPU (plus EZCHAT_CMAKE_ARGS)
    python ezchat/engine/cpu.py key          # the wheelhouse key: llama-cpp-python version, flags, compiler
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The pinned binding. pyproject.toml pins the same version; a test checks they agree.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"

# The one variable for opt-in builds (CUDA, Metal, AMX, ...): appended after ezchat's own flags,
# so a later -DX=... wins in CMake.
EXTRA_ARGS_VARIABLE = "EZCHAT_CMAKE_ARGS"


@dataclass(frozen=True)
class InstructionSet:
    name: str  # as llama.cpp's system-info line names it
    cpu_flags: tuple[str, ...]  # every /proc/cpuinfo flag it needs
    option: str | None  # the ggml CMake option that compiles it in (None: implied by another)
    opt_in: bool = False  # never turned on from the CPU alone

    def runs_on(self, flags: frozenset[str]) -> bool:
        return all(flag in flags for flag in self.cpu_flags)


# Order is llama.cpp's own (ggml/CMakeLists.txt). GGML_AVX512 compiles with -mavx512f, cd, vl,
# dq and bw together, so it needs all five.
X86_INSTRUCTION_SETS: tuple[InstructionSet, ...] = (
    InstructionSet("SSE3", ("pni",), None),
    InstructionSet("SSSE3", ("ssse3",), None),
    InstructionSet("SSE42", ("sse4_2",), "GGML_SSE42"),
    InstructionSet("AVX", ("avx",), "GGML_AVX"),
    InstructionSet("AVX_VNNI", ("avx_vnni",), "GGML_AVX_VNNI"),
    InstructionSet("AVX2", ("avx2",), "GGML_AVX2"),
    InstructionSet("BMI2", ("bmi2",), "GGML_BMI2"),
    InstructionSet("FMA", ("fma",), "GGML_FMA"),
    InstructionSet("F16C", ("f16c",), "GGML_F16C"),
    InstructionSet(
        "AVX512", ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"), "GGML_AVX512"
    ),
    InstructionSet("AVX512_VBMI", ("avx512vbmi",), "GGML_AVX512_VBMI"),
    InstructionSet("AVX512_VNNI", ("avx512_vnni",), "GGML_AVX512_VNNI"),
    InstructionSet("AVX512_BF16", ("avx512_bf16",), "GGML_AVX512_BF16"),
    # AMX: ggml's AMX kernels crash on some Xeons that report it; only on request.
    InstructionSet("AMX_TILE", ("amx_tile",), "GGML_AMX_TILE", opt_in=True),
    InstructionSet("AMX_INT8", ("amx_int8",), "GGML_AMX_INT8", opt_in=True),
    InstructionSet("AMX_BF16", ("amx_bf16",), "GGML_AMX_BF16", opt_in=True),
)

_BY_OPTION = {isa.option: isa for isa in X86_INSTRUCTION_SETS if isa.option}
_BY_NAME = {isa.name: isa for isa in X86_INSTRUCTION_SETS}


def is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64", "i686", "i386"}


@functools.cache
def _proc_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""  # not Linux


def _cpuinfo_field(cpuinfo: str | None, names: set[str]) -> str | None:
    """The value of the first ``/proc/cpuinfo`` line named one of ``names``."""
    for line in (_proc_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        name, _, value = line.partition(":")
        if name.strip() in names:
            return value.strip()
    return None


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The instruction-set flags this CPU and kernel report (``/proc/cpuinfo``'s flags line).

    Empty where there is no such file (macOS, Windows): there the build stays llama.cpp's own.
    """
    return frozenset((_cpuinfo_field(cpuinfo, {"flags", "Features"}) or "").split())


def cpu_model(cpuinfo: str | None = None) -> str:
    return _cpuinfo_field(cpuinfo, {"model name"}) or platform.processor() or platform.machine()


def parse_cpu_list(text: str) -> set[int]:
    """A kernel CPU list such as ``0-3,8,10-11`` as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


@dataclass(frozen=True)
class ThreadCount:
    count: int
    how: str  # how the count was chosen, for ``ezchat info``


def _allowed_cpus() -> list[int]:
    """The CPUs this process may run on (a container's cpuset), or all of them where the
    platform cannot say."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def default_thread_count(sys_root: str | Path = "/sys/devices") -> ThreadCount:
    """llama.cpp's rule for its default thread count: the physical performance cores.

    One thread per physical core (SMT siblings share one core's vector units, and a second
    thread on a core slows decoding), only the P-cores of a hybrid Intel CPU (an E-core holds
    back every step, since ggml's threads wait for each other), and only among the CPUs this
    process may run on (a container's cpuset), which llama.cpp does not look at.

    llama-cpp-python's own default is ``cpu_count() // 2``, half the cores on a machine
    without SMT: 58 against llama-bench's 110 tokens/s on a 2-core VM.
    """
    root = Path(sys_root)
    allowed = _allowed_cpus()
    performance: set[int] | None = None
    try:  # the kernel lists a hybrid CPU's P-cores under the cpu_core PMU
        performance = parse_cpu_list((root / "cpu_core" / "cpus").read_text())
    except (OSError, ValueError):
        performance = None
    considered = [cpu for cpu in allowed if performance is None or cpu in performance]
    cores: set[str] = set()
    for cpu in considered:
        topology = root / "system" / "cpu" / f"cpu{cpu}" / "topology"
        try:
            cores.add((topology / "thread_siblings_list").read_text().strip())
        except OSError:
            cores = set()
            break
    if not cores:
        count = len(allowed) or 1
        return ThreadCount(count, f"{count} CPUs this process may use (no CPU topology to read)")
    parts = [f"physical cores among the {len(allowed)} CPUs this process may use"]
    if performance is not None:
        parts.append(f"P-cores only ({len(considered)} CPUs)")
    if len(cores) < len(considered):
        parts.append(f"{len(considered) // len(cores)} threads per core")
    return ThreadCount(len(cores), ", ".join(parts))


def app_thread_count(sys_root: str | Path = "/sys/devices") -> ThreadCount:
    """The default for an app that draws while the model decodes (the TUI): llama.cpp's rule,
    less one thread where that rule takes every CPU this process may use.

    ggml's threads wait for each other at every step, so when the app's drawing takes one of
    them off its CPU, the whole step waits: on a 2-core VM the app streamed at 74-83 tokens/s
    with 2 threads and at 125-130 with 1 (benchmarks/tui.py, paired with raw llama-cpp-python
    at 123-133). With SMT or spare cores the drawing runs elsewhere and nothing changes."""
    threads = default_thread_count(sys_root)
    if threads.count > 1 and threads.count >= len(_allowed_cpus()):
        return ThreadCount(threads.count - 1, f"{threads.how}, less one for the app's drawing")
    return threads


def extra_args(environ: dict[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    return shlex.split(environ.get(EXTRA_ARGS_VARIABLE, ""))


def _options_set(args: list[str]) -> dict[str, str]:
    """``-DNAME=VALUE`` (or ``-DNAME:BOOL=VALUE``) arguments as a dict, later ones winning."""
    found: dict[str, str] = {}
    for arg in args:
        match = re.fullmatch(r"-D([A-Za-z0-9_]+)(?::[A-Z]+)?=(.*)", arg)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def cmake_args(flags: frozenset[str] | None = None, extra: list[str] | None = None) -> list[str]:
    """The CMAKE_ARGS for llama-cpp-python on this CPU: portable, no AMX, RPC, then the user's
    extras.

    On x86 every instruction-set option is named, ON exactly where the CPU reports all the
    flags it needs (opt-in ones OFF), so nothing the compiler happens to know leaks in. Elsewhere
    (ARM, Apple) llama.cpp's own defaults stay, since its ARM detection reads the CPU at run time.
    """
    flags = cpu_flags() if flags is None else flags
    extra = extra_args() if extra is None else extra
    # The RPC backend changes no CPU kernel; it is on so that llama.cpp's ggml-rpc-server and
    # llama-server can be built in the wheel's own CMake tree (scripts/llama_tools.py).
    args: list[str] = ["-DGGML_RPC=ON"]
    if is_x86() and flags:
        args.append("-DGGML_NATIVE=OFF")
        for isa in X86_INSTRUCTION_SETS:
            if isa.option:
                on = not isa.opt_in and isa.runs_on(flags)
                args.append(f"-D{isa.option}={'ON' if on else 'OFF'}")
    return args + extra


def features_beyond_cpu(args: list[str], flags: frozenset[str] | None = None) -> list[str]:
    """ggml options turned ON in ``args`` whose instructions this CPU does not report."""
    flags = cpu_flags() if flags is None else flags
    beyond = []
    for option, value in _options_set(args).items():
        isa = _BY_OPTION.get(option)
        if isa is None or value.upper() not in {"ON", "1", "TRUE", "YES"}:
            continue
        if not isa.runs_on(flags):
            beyond.append(option)
    return beyond


def built_features(system_info: str) -> list[str]:
    """The instruction sets llama.cpp's system-info line says the library was built with.

    The line reads like ``CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ... | REPACK = 1 |``; only the
    names this module knows as instruction sets count (LLAMAFILE, OPENMP and REPACK do not).
    """
    found = []
    for part in system_info.replace("|", "\n").splitlines():
        name, _, value = part.rpartition(" = ")
        name = name.rsplit(":", 1)[-1].strip()
        if name in _BY_NAME and value.strip() == "1" and name not in found:
            found.append(name)
    return found


def cpu_lacks(names: list[str], flags: frozenset[str] | None = None) -> list[str]:
    """Those of the instruction sets ``names`` that this CPU does not report."""
    flags = cpu_flags() if flags is None else flags
    return [name for name in names if not _BY_NAME[name].runs_on(flags)]


def cpu_instruction_sets(flags: frozenset[str] | None = None) -> list[str]:
    """The instruction sets of the table that this CPU reports, by llama.cpp's names."""
    flags = cpu_flags() if flags is None else flags
    return [isa.name for isa in X86_INSTRUCTION_SETS if isa.runs_on(flags)]


@functools.cache
def _compiler_version() -> str:
    for compiler in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if not compiler:
            continue
        try:
            out = subprocess.run(
                [compiler, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if out:
            return out.splitlines()[0]
    return "unknown compiler"


def build_key(args: list[str] | None = None) -> str:
    """A short hash naming one build: binding version, CMake flags, compiler, Python, machine.

    The flags already carry the CPU features chosen from this CPU, so two machines whose CPUs
    give the same flags share a wheel, and any other difference gives another key.
    """
    args = cmake_args() if args is None else args
    parts = [
        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
        " ".join(args),
        _compiler_version(),
        f"{sys.implementation.cache_tag}-{platform.machine()}",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def rebuild_command() -> str:
    """The command that rebuilds llama-cpp-python for this CPU (run from an ezchat checkout)."""
    return "bash scripts/setup.sh --rebuild"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "cmake-args"
    if command == "cmake-args":
        print(shlex.join(cmake_args()))
    elif command == "key":
        print(build_key())
    elif command == "threads":
        threads = default_thread_count()
        print(f"{threads.count} ({threads.how})")
    elif command == "version":
        print(LLAMA_CPP_PYTHON_VERSION)
    elif command == "check":
        beyond = features_beyond_cpu(cmake_args())
        if beyond:
            print(
                f"{EXTRA_ARGS_VARIABLE} turns on {', '.join(beyond)}, which this CPU "
                f"({cpu_model()}) does not report; the build would die with SIGILL",
                file=sys.stderr,
            )
            return 2
    else:
        print("usage: cpu.py cmake-args|key|version|threads|check", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
