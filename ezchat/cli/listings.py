"""``ezchat formats`` and ``ezchat samplers``: list the prompt formats or sampler presets, or
print one's file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from ..chat import formats, samplers
from ..errors import EzChatError
from ..safetext import json_text, visible
from ..settings import userfiles
from .options import JsonOption
from .tables import print_table, show_value

formats_app = typer.Typer(help="List the prompt formats, or show one's file.")
samplers_app = typer.Typer(help="List the sampler presets, or show one's file.")


def _list_files(
    files: dict[str, userfiles.UserFile], describe: Callable[[str], str], json_output: bool
) -> None:
    rows = []
    broken: set[str] = set()
    for name, file in files.items():
        try:
            description = describe(name)
        except EzChatError as exc:
            description = f"(broken: {exc})"
            broken.add(name)
        rows.append(
            {
                "name": name,
                "source": file.source,
                "path": str(file.path),
                "description": description,
            }
        )
    if json_output:
        print(json_text(rows))
        return
    print_table(
        ["name", "source", "description"],
        # a broken entry's reason names the file, line and key: cut, it would hide them
        [
            [r["name"], r["source"], show_value(r["description"], 0 if r["name"] in broken else 70)]
            for r in rows
        ],
    )


def _show_file(kind: str, name: str, what: str) -> None:
    path = userfiles.find(kind, name, what).path
    sys.stdout.write(visible(userfiles.read_settings_text(path)))


@formats_app.callback(invoke_without_command=True)
def formats_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the prompt formats: name, where it comes from (shipped or user file)."""
    if ctx.invoked_subcommand is None:
        _list_files(formats.sources(), lambda name: formats.load(name).description, json_output)


@formats_app.command("show")
def formatsshow_value(name: Annotated[str, typer.Argument(help="a format name")]) -> None:
    """Print a format's TOML file."""
    _show_file(formats.KIND, name, "format")


@samplers_app.callback(invoke_without_command=True)
def samplers_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the sampler presets: name, where it comes from (shipped or user file)."""
    if ctx.invoked_subcommand is None:
        _list_files(samplers.sources(), samplers.description, json_output)


@samplers_app.command("show")
def samplersshow_value(name: Annotated[str, typer.Argument(help="a sampler preset name")]) -> None:
    """Print a sampler preset's TOML file."""
    _show_file(samplers.KIND, name, "sampler preset")
