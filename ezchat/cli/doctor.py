"""``ezchat doctor``: does llama.cpp, as built here, run on this CPU?

A llama.cpp built for another CPU, or with ggml's AMX kernels on a Xeon where they crash, does
not fail politely: the process dies with SIGILL on the first decode. So the check runs in a
child process, which loads the model and decodes a few tokens, and the parent reads how it
ended. A death by signal becomes one line: the signal, what the library was built with against
what this CPU has, and the command that rebuilds it.

This module imports no llama_cpp: the parent must survive whatever the child hits.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from ..crashguard import signal_name
from ..engine import cpu

# The child: llama.cpp's system-info line first (flushed, so it survives a crash in the
# decode), then a load and a short greedy decode with the default thread count.
SELF_CHECK_CODE = r"""
import sys, time
import llama_cpp
print("system-info:", llama_cpp.llama_print_system_info().decode("utf-8", "replace"), flush=True)
import ezchat as ez
model = ez.Model(sys.argv[1], context_length=256, seed=1)
print("threads:", model.n_threads, model.threads_how, flush=True)
start = time.perf_counter()
result = model.complete("The capital of France is", sampler=ez.SamplerSettings(temp=0.0, max_len_tokens=16))
seconds = time.perf_counter() - start
print("decoded:", len(result.tokens), f"{seconds:.3f}", flush=True)
"""

SELF_CHECK_TIMEOUT_S = 300


@dataclass
class CheckResult:
    ok: bool
    message: str  # one line
    system_info: str = ""
    threads: str = ""


def reported(lines: list[str], key: str) -> str | None:
    """What the child printed after ``key:`` (its lines read ``system-info: ...`` and so on)."""
    prefix = f"{key}:"
    return next(
        (line.removeprefix(prefix).strip() for line in lines if line.startswith(prefix)), None
    )


def explain_crash(signum: int, system_info: str, flags: frozenset[str] | None = None) -> str:
    """One line for a self-check that died from ``signum``: cause, features, the fix."""
    flags = cpu.cpu_flags() if flags is None else flags
    name = signal_name(signum)
    built = cpu.built_features(system_info)
    lacking = cpu.cpu_lacks(built, flags)
    has = cpu.cpu_instruction_sets(flags)
    fix = f"rebuild it for this CPU: {cpu.rebuild_command()}"
    if not system_info:
        cause = "before it could report its build (the library may not even load on this CPU)"
    elif lacking:
        cause = (
            f"it was built with {', '.join(lacking)}, which this CPU ({cpu.cpu_model()}) "
            "does not have"
        )
    elif any(feature.startswith("AMX") for feature in built):
        cause = "it was built with ggml's AMX kernels, which die on some Xeons that report AMX"
    else:
        cause = "its build features all run on this CPU, so the cause is elsewhere"
        fix = "run the failing command under gdb and report it, or " + fix
    return (
        f"llama.cpp died with {name} during the self-check: {cause} "
        f"(built with {' '.join(built) or 'unknown'}; this CPU has {' '.join(has) or 'unknown'}); "
        f"{fix}"
    )


def self_check(model_path: str) -> CheckResult:
    """Load ``model_path`` and decode a few tokens in a child process; say how it went."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", SELF_CHECK_CODE, model_path],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=SELF_CHECK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return CheckResult(
            False,
            f"the self-check did not finish in {SELF_CHECK_TIMEOUT_S} s; the machine may be "
            "overloaded, or llama.cpp hangs here (try again, then rebuild: "
            f"{cpu.rebuild_command()})",
        )
    lines = done.stdout.splitlines()
    system_info = reported(lines, "system-info") or ""
    threads = reported(lines, "threads") or "?"
    if done.returncode < 0:
        return CheckResult(
            False, explain_crash(-done.returncode, system_info), system_info, threads
        )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        last = errors[-1] if errors else f"exit status {done.returncode}"
        return CheckResult(False, f"the self-check failed: {last}", system_info, threads)
    decoded = (reported(lines, "decoded") or "").split()
    if len(decoded) != 2:
        return CheckResult(False, "the self-check printed no result", system_info, threads)
    tokens, seconds = int(decoded[0]), float(decoded[1])
    rate = tokens / seconds if seconds > 0 else 0.0
    return CheckResult(
        True,
        f"ok: llama.cpp decoded {tokens} tokens at {rate:.0f} tokens/s with {threads.split()[0]} "
        "threads on this CPU",
        system_info,
        threads,
    )
