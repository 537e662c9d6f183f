"""The command-line options for a server's limits, shared by every command that takes
``--server`` (the defaults and what each bounds: ezchat/backends/limits.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..backends.limits import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_READ_MB, DEFAULT_TIMEOUT

# typer takes no open range: the smallest value allowed stands for "more than zero"
_SMALLEST = 0.001

SERVER_LIMIT_PARAMETERS: dict[str, Any] = {
    "timeout": Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=_SMALLEST,
            help=f"with --server: the longest wait for an answer [default: {DEFAULT_TIMEOUT:g}]",
        ),
    ],
    "idle_timeout": Annotated[
        float | None,
        typer.Option(
            "--idle-timeout",
            metavar="SECONDS",
            min=_SMALLEST,
            help="with --server: the longest gap in a streamed reply "
            f"[default: {DEFAULT_IDLE_TIMEOUT:g}]",
        ),
    ],
    "max_read_mb": Annotated[
        float | None,
        typer.Option(
            "--max-read-mb",
            metavar="MIB",
            min=_SMALLEST,
            help=f"with --server: the most one answer may hold [default: {DEFAULT_MAX_READ_MB:g}]",
        ),
    ],
}
