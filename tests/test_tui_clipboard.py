"""The clipboard fallback for terminals that ignore OSC 52: the first clipboard tool on PATH
gets the text on its standard input."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from ezchat.tui.clipboard import copy_with_system_tool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX tools and PATH")


def install_tool(directory: Path, name: str, exit_status: int = 0) -> Path:
    """An executable called ``name`` that saves its standard input next to itself."""
    received = directory / f"{name}.received"
    script = directory / name
    cat = shutil.which("cat")  # PATH will hold only the fake tools
    script.write_text(f'#!/bin/sh\n{cat} > "{received}"\nexit {exit_status}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return received


def test_the_first_working_tool_gets_the_text(tmp_path: Path, monkeypatch) -> None:
    failing = install_tool(tmp_path, "wl-copy", exit_status=1)  # e.g. no Wayland display
    received = install_tool(tmp_path, "xclip")
    monkeypatch.setenv("PATH", str(tmp_path))
    text = "Paris is the capital of France. ✓\nSecond line"
    assert copy_with_system_tool(text) == "xclip"
    assert received.read_text(encoding="utf-8") == text
    assert failing.exists()  # it was tried first


def test_no_tool_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert os.listdir(tmp_path) == []
    assert copy_with_system_tool("text") is None
