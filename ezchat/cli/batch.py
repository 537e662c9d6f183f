"""``ezchat batch INPUT.jsonl -o OUTPUT.jsonl``: run a file of prompts through a model.

Each input line is a JSON object with ``prompt`` and optionally ``id``, ``system``,
``metadata`` (an object carried to the output), ``context`` (an object) and any other keys,
which are context keys for the template. Each output line carries the input's ``id`` (or its
line number), the response and its token counts. Lines are written and flushed as each prompt
finishes, and ids already in OUTPUT are skipped, so an interrupted run continues where it
stopped when started again.

``register(app)`` adds the command to a typer app; ``python -m ezchat.cli.batch`` runs it
alone.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import EzChatError
from ..runners.data import read_jsonl
from ..runners.prompts import Prompt, PromptCollection
from ..runners.responses import Response
from ..runners.typed import OutputType
from ..safetext import visible
from .batch_output import OutputFailed, OutputFile, check_output_folder, finished_ids
from .server_options import SERVER_LIMIT_PARAMETERS

PROG = "ezchat batch"
# the server's limits, as every command that takes --server names them
TimeoutOption = SERVER_LIMIT_PARAMETERS["timeout"]
IdleTimeoutOption = SERVER_LIMIT_PARAMETERS["idle_timeout"]
MaxReadOption = SERVER_LIMIT_PARAMETERS["max_read_mb"]
_RESERVED = {"prompt", "id", "system", "metadata", "context"}


@dataclass(slots=True)
class InputLine:
    line: int
    id: Any
    prompt: Prompt


def parse_records(
    records: list[tuple[int, dict[str, Any]]], path: Path, template: str | None
) -> tuple[list[InputLine], list[str]]:
    """Prompts from JSONL records, and one message per record that cannot be used."""
    items: list[InputLine] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, record in records:
        where = f"{path}:{line}"
        prompt_text = record.get("prompt")
        if not isinstance(prompt_text, str):
            problems.append(f'{where}: needs a "prompt" string')
            continue
        metadata = record.get("metadata", {})
        context = record.get("context", {})
        system = record.get("system")
        if not isinstance(metadata, dict) or not isinstance(context, dict):
            problems.append(f'{where}: "metadata" and "context" must be JSON objects')
            continue
        if system is not None and not isinstance(system, str):
            problems.append(f'{where}: "system" must be a string')
            continue
        item_id = record.get("id", line)
        key = str(item_id)
        if key in seen:
            problems.append(f"{where}: id {item_id!r} repeats line {seen[key]}; ids must be unique")
            continue
        seen[key] = line
        extra = {k: v for k, v in record.items() if k not in _RESERVED}
        # A broken template raises UserFileError here: it breaks every line, so the run stops.
        prompt = Prompt(
            system,
            prompt_text,
            id=key,
            conversation_id=line,
            context={**context, **extra},
            meta_data=metadata,
            template_name=template or "default",
        )
        items.append(InputLine(line, item_id, prompt))
    return items, problems


def _output_line(item: InputLine, response: Response) -> str:
    data = response.response_data
    for internal in ("conversation_id", "request_id"):
        data.pop(internal, None)
    data["id"] = item.id
    data["line"] = item.line
    return json.dumps(data, ensure_ascii=False)


def _warn(message: str) -> None:
    # messages quote input paths, ids and a server's errors: controls in them are shown
    print(f"{PROG}: {visible(' '.join(message.split()))}", file=sys.stderr)


def batch_command(
    ctx: typer.Context,
    input: Annotated[
        Path, typer.Argument(metavar="INPUT.jsonl", help="prompts, one JSON object a line")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="OUTPUT.jsonl", help="where responses go")
    ],
    model: Annotated[
        str | None, typer.Option("--model", "-m", metavar="PATH", help="GGUF model file")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", metavar="URL", help="an OpenAI-compatible server to use instead of a model"
        ),
    ] = None,
    timeout: TimeoutOption = None,
    idle_timeout: IdleTimeoutOption = None,
    max_read_mb: MaxReadOption = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", metavar="NAME", help="prompt format; 'auto' is the model's own"
        ),
    ] = None,
    sampler: Annotated[
        str | None, typer.Option("--sampler", "-s", metavar="NAME", help="sampler preset")
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", metavar="TEXT", help="system prompt for lines without one"),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option("--template", metavar="NAME", help="Jinja template for the prompts"),
    ] = None,
    output_type: Annotated[
        str | None,
        typer.Option("--output-type", metavar="JSON", help='typed output, e.g. \'{"age": "int"}\''),
    ] = None,
    context_length: Annotated[
        int | None, typer.Option("--context-length", "-c", min=16, help="context size in tokens")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", "-t", min=1, help="CPU threads to use")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="most tokens per response")
    ] = None,
    parallel: Annotated[
        int, typer.Option("--parallel", "-p", min=1, help="prompts run at once in one batch")
    ] = 16,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="reuse responses stored by earlier runs")
    ] = True,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="run again the ids OUTPUT holds as skipped")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    make_folder: Annotated[
        bool, typer.Option("--mkdir", help="create OUTPUT's folder if it does not exist")
    ] = False,
) -> None:
    """Run every prompt of INPUT.jsonl and append the responses to OUTPUT.jsonl (resumable)."""
    from ..runners.batch import BatchRunner
    from ..session import ChatOptions, load_model, load_sampler
    from .loadbar import load_model_showing_progress
    from .options import prepare, root_options

    # The options given before the command (ezchat --server URL batch) count where batch's own
    # are not given: a server or model named anywhere is the one used.
    own = {
        "model": model,
        "server": server,
        "timeout": timeout,
        "idle_timeout": idle_timeout,
        "max_read_mb": max_read_mb,
        "format": format,
        "sampler": sampler,
        "system": system,
        "context_length": context_length,
        "n_threads": threads,
    }
    given = {name: value for name, value in own.items() if value is not None}
    options = prepare(replace(root_options(ctx) or ChatOptions(), **given))
    typed = OutputType.from_json(output_type) if output_type is not None else None
    check_output_folder(output, make_folder)
    records, problems = read_jsonl(input)
    items, bad_records = parse_records(records, input, template)
    problems += bad_records
    for problem in problems:
        _warn(problem)
    with OutputFile(output) as file:  # held from here: another run on OUTPUT is refused
        done = finished_ids(output, retry_failed)
        todo = [item for item in items if str(item.id) not in done]
        for item in todo:
            if item.prompt.sys_prompt is None and options.system:
                item.prompt.sys_prompt = options.system
        if not todo:
            _warn(
                f"nothing to do: {len(items) - len(todo)} of {len(items)} ids are already in {output}"
            )
            raise typer.Exit(1 if problems else 0)

        chosen_sampler = load_sampler(options)
        if max_tokens is not None:
            chosen_sampler = chosen_sampler.replace(max_len_tokens=max_tokens)
        runner = BatchRunner(
            load_model(options) if quiet else load_model_showing_progress(options),
            chosen_sampler,
            options.format or "auto",
            cache=cache,
            parallel=parallel,
            progress=not quiet,
        )
        by_id = {item.prompt.id: item for item in todo}
        written = 0

        def write(response: Response) -> None:
            nonlocal written
            item = by_id[response.prompt.id]
            try:
                file.write_line(_output_line(item, response))
            except OSError as exc:
                raise OutputFailed(
                    f"cannot write {output} ({exc.strerror or exc}); the run stopped after "
                    f"{written} responses: make room (or pick another -o) and run again to "
                    "continue"
                ) from None
            written += 1
            if response.skipped is not None:
                _warn(f"{input}:{item.line}: skipped: {response.skipped}")
            elif response.error is not None:
                _warn(f"{input}:{item.line}: {response.error}")
            elif response.cut_off:
                _warn(
                    f"{input}:{item.line}: the typed reply was cut off ({response.stop_reason}) "
                    f"and closed to JSON of the output type"
                )

        try:
            responses = runner.run(
                PromptCollection(item.prompt for item in todo), typed, on_response=write
            )
        except KeyboardInterrupt:
            _warn(f"interrupted: {written} responses are in {output}; run again to continue")
            raise
    totals = responses.totals()
    _warn(
        f"wrote {written} responses to {output} ({totals['cached']} from the cache, "
        f"{totals['skipped']} skipped, {totals['errors']} failed; {len(items) - len(todo)} "
        f"were there already; {len(problems)} input lines unusable)"
    )
    if problems or totals["skipped"] or totals["errors"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``batch`` to the ``ezchat`` typer app."""
    app.command("batch")(batch_command)


def main(argv: list[str] | None = None) -> int:
    """Run the batch command on its own, with the CLI's error convention: a user mistake is
    one line on stderr and status 2, Ctrl-C is status 130."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app.callback()(lambda: None)  # a group, so "batch" stays a subcommand as in ezchat
    try:
        result = app(["batch", *(sys.argv[1:] if argv is None else argv)], standalone_mode=False)
    except EzChatError as exc:
        print(f"{PROG}: error: {visible(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        return 130
    except typer.TyperException as exc:  # usage errors of typer's click
        print(f"{PROG}: error: {exc.format_message()}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
