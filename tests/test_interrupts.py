"""Ctrl-C ends a CLI command with status 130 and one line, wherever it lands: while the model
loads (between two of llama.cpp's tensors, at its last progress report included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# each test loads the model in a child process: the full suite's, not the quick tier's
pytestmark = pytest.mark.slow

# The real CLI, and a real SIGINT to this process, sent from inside llama.cpp's load, once its
# progress first reaches AT: at that progress report ("report"), or from inside the next log
# line llama.cpp writes through llama-cpp-python's ctypes log callback ("log"), where ctypes
# would swallow a KeyboardInterrupt ("Exception ignored on calling ctypes callback") and let the
# load, and the reply, go on. The wrapper only decides when to send it.
INTERRUPTED_LOAD = """
import os, signal, sys
import llama_cpp._logger as llama_logger
import ezchat.cli.app as cli
import ezchat.cli.loadbar as loadbar

WHERE, AT = sys.argv[1], float(sys.argv[2])
plain_load = loadbar.load_model
armed, sent = [], []

def interrupt():
    if not sent:
        sent.append(True)
        os.kill(os.getpid(), signal.SIGINT)

class LevelsThatInterrupt(dict):  # read by the log callback at each line llama.cpp logs
    def __getitem__(self, key):
        if armed:
            interrupt()
        return dict.__getitem__(self, key)

llama_logger.GGML_LOG_LEVEL_TO_LOGGING_LEVEL = LevelsThatInterrupt(
    llama_logger.GGML_LOG_LEVEL_TO_LOGGING_LEVEL
)

def load_model(options, progress=None):
    def report(fraction):
        if fraction >= AT:
            if WHERE == "report":
                interrupt()
            armed.append(True)
        return progress(fraction) if progress is not None else True
    return plain_load(options, report)

loadbar.load_model = load_model
sys.argv = ["ezchat", "generate", "Say hi.", "-n", "4", "-s", "GreedyDecoding", "-c", "256"]
cli.main()
"""


@pytest.mark.parametrize(
    ("where", "at"),
    [("report", 0.0), ("report", 1.0), ("log", 0.0), ("log", 1.0)],
    ids=["first-report", "last-report", "log-line-midway", "log-line-after-the-weights"],
)
def test_ctrl_c_during_the_model_load_exits_130_with_one_line(where: str, at: float) -> None:
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_LOAD, where, str(at)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 130, (result.stdout, result.stderr)
    assert result.stdout == ""  # no reply: the load was abandoned
    assert result.stderr == "ezchat: interrupted\n"
