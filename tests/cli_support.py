"""The real ``ezchat`` command in a child process, for the tests of what it prints.

The child imports this checkout (``PYTHONPATH``) and inherits the test's isolated home
(``EZCHAT_HOME``, set by conftest's autouse fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_ezchat(
    *args: str, input: str | None = None, timeout: float = 120, **run: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ezchat", *args],
        cwd=ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        **run,
    )


def one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The single ``ezchat: error: ...`` line a refused command printed (exit status 2), holding
    each of ``fragments``."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ezchat: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
