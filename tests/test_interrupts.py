"""Ctrl-C ends a CLI command with status 130 and one line, wherever it lands: while the model
loads (between two of llama.cpp's tensors, at its last progress report included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ezchat as ez

ROOT = Path(__file__).resolve().parent.parent

# The real CLI, and a real SIGINT to this process, sent from inside llama.cpp's load: at the
# progress report whose fraction first reaches AT. The wrapper only decides when to send it.
INTERRUPTED_LOAD = """
import os, signal, sys
import ezchat.cli as cli

AT = float(sys.argv[1])
plain_load = cli.load_model
sent = []

def load_model(options, progress=None):
    def report(fraction):
        if fraction >= AT and not sent:
            sent.append(fraction)
            os.kill(os.getpid(), signal.SIGINT)
        return progress(fraction) if progress is not None else True
    return plain_load(options, report)

cli.load_model = load_model
sys.argv = ["ezchat", "generate", "Say hi.", "-n", "4", "-s", "GreedyDecoding", "-c", "256"]
cli.main()
"""


@pytest.mark.parametrize("at", [0.0, 0.5, 1.0], ids=["first-report", "midway", "last-report"])
def test_ctrl_c_during_the_model_load_exits_130_with_one_line(at: float) -> None:
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_LOAD, str(at)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 130, (result.stdout, result.stderr)
    assert result.stdout == ""  # no reply: the load was abandoned
    assert result.stderr == "ezchat: interrupted\n"


def test_a_report_that_raises_at_the_last_call_is_not_lost(model_path) -> None:
    """llama.cpp finishes the load after its last report whatever the report returns, so an
    error raised there (Ctrl-C reaching Python) used to vanish and the load went on."""

    def interrupt_at_the_end(fraction: float) -> None:
        if fraction >= 1.0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ez.Model(model_path, context_length=256, progress=interrupt_at_the_end)
