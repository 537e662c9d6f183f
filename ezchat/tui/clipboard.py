"""Copying to the system clipboard where a tool for it exists; OSC 52 (the app's
``copy_to_clipboard``) covers terminals, this covers those that ignore it."""

from __future__ import annotations

import shutil
import subprocess
import sys

_TOOLS = (
    ["pbcopy"],
    ["wl-copy"],
    ["xclip", "-selection", "clipboard"],
    ["xsel", "--clipboard", "--input"],
    ["clip.exe"],
)


def copy_with_system_tool(text: str) -> str | None:
    """Copy ``text`` with the first clipboard tool found; its name, or None when none
    worked (no tool, or no display for it)."""
    if sys.platform == "win32":
        tools: tuple[list[str], ...] = (["clip"],)
    else:
        tools = _TOOLS
    for command in tools:
        if shutil.which(command[0]) is None:
            continue
        try:
            subprocess.run(command, input=text.encode(), check=True, timeout=2, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return command[0]
    return None
