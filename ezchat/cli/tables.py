"""Plain-text output of the ``ezchat`` commands: aligned tables and one-line values. Both show
text from outside ezchat (metadata, token texts, descriptions) through ``visible``."""

from __future__ import annotations

import json
from typing import Any

from ..safetext import visible


def show_value(value: Any, limit: int = 0) -> str:
    """A value on one line, cut to ``limit`` characters (0: no limit), its controls visible."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    length = len(text)
    text = visible(text.replace("\n", "\\n"))
    if limit and len(text) > limit:
        text = f"{text[: limit - 1]}… ({length} characters)"
    return text


def print_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> None:
    """Aligned columns, plain text (it is meant to be read and to be piped). The cells show
    outside text (metadata, token texts, descriptions) through ``visible``."""
    rows = [[visible(cell) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    print(line(headers))
    print(line(["-" * width for width in widths]))
    for row in rows:
        print(line(row))
