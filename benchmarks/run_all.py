"""Run every benchmark in one go and print their tables (paste the output into RESULTS.md).

    .venv/bin/python benchmarks/run_all.py            # all of them
    .venv/bin/python benchmarks/run_all.py decode turns

Close other heavy programs first: llama.cpp's threads spin while they wait for each other, so a
busy machine distorts every figure here.
"""

from __future__ import annotations

import datetime
import importlib
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import llama_cpp  # noqa: E402
from common import THREADS, default_model_path  # noqa: E402

ALL = [
    "threads",
    "build",
    "decode",
    "overhead",
    "turns",
    "latency",
    "reroll",
    "reopen",
    "memory",
    "batch",
    "grow",
    "loom",
    "tree_screen",
    "tui",
    "server",
]


def main(names: list[str]) -> None:
    print(f"# ezchat benchmarks, {datetime.date.today()}")
    print(
        f"\nmachine: {platform.machine()}, {THREADS} threads; llama-cpp-python "
        f"{llama_cpp.__version__}; model {Path(default_model_path()).name}"
    )
    for name in names or ALL:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            print(f"\n({name}: not present in this checkout)")
            continue
        module.main()


if __name__ == "__main__":
    main(sys.argv[1:])
