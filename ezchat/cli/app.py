"""The ``ezchat`` command: the full-screen app, the terminal chat and a few tools, on typer.

The commands are thin: they read options, call the core and print. Every mistake a user can
make (a missing model, a bad flag value, an unknown preset, malformed JSON, a prompt too long
for the context) ends in one line on stderr and exit status 2; Ctrl-C ends with status 130.

Plain output shows text from outside ezchat (completions, GGUF metadata, preset files, file
names in errors) through ``visible`` (ezchat.safetext), so a terminal control in it is a
picture, not obeyed; ``--json`` carries the raw text, escaped.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__, utf8
from ..chat import formats, jinja_render, samplers
from ..crashguard import guard_terminal
from ..engine import cpu
from ..engine.gguf import GGUFInfo, read_gguf
from ..engine.memory import human_bytes
from ..errors import EzChatError
from ..interrupt import CancelOnSigint
from ..safetext import VisibleStream, json_text, visible
from ..session import ChatOptions, load_sampler, make_thread
from ..settings import userfiles
from ..settings.config import MAX_MARKDOWN_CHARS, Config, config_path, load_config, save_config
from ..settings.modelpath import resolve_model_path
from ..storage.chatfile import ChatFile, parse_chat_text, read_chat_file
from .doctor import self_check
from .loadbar import EXIT_INTERRUPTED, load_model_showing_progress
from .server_options import SERVER_LIMIT_PARAMETERS

PROG = "ezchat"
EXIT_USAGE = 2
MIN_CONTEXT = 16


# --- errors and the group ------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """An error on one line; it may quote a file name or a server's reply, so visible."""
    return visible(" ".join(str(text).split()))


def fail(message: str) -> EzChatError:
    """A user error found by the CLI itself, to raise; ``EzChatGroup.main`` shows it."""
    return EzChatError(message)


class EzChatGroup(TyperGroup):
    """The root command: turns every user error into one stderr line and exit status 2, and
    accepts a model path as the first argument (``ezchat MODEL.gguf`` opens the app)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        return super().parse_args(ctx, self._model_path_as_option(list(args)))

    def _model_path_as_option(self, args: list[str]) -> list[str]:
        takes_value = {
            name
            for param in self.params
            if param.param_type_name == "option"
            and not getattr(param, "is_flag", False)
            and not getattr(param, "count", False)
            for name in param.opts
        }
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                return args
            if arg.startswith("-"):
                index += 2 if arg in takes_value else 1
                continue
            if arg not in self.commands and (arg.endswith(".gguf") or Path(arg).is_file()):
                return [*args[:index], "--model", arg, *args[index + 1 :]]
            return args
        return args

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        message = None
        try:
            code = super().main(
                args, prog_name or PROG, complete_var, standalone_mode=False, **extra
            )
            code = code if isinstance(code, int) else 0
        except typer.TyperException as exc:  # typer's (vendored click's) usage errors
            context = getattr(exc, "ctx", None)
            see = f"; see '{context.command_path} --help'" if context is not None else ""
            message, code = exc.format_message().rstrip(".") + see, EXIT_USAGE
        except typer.Abort as exc:
            code = EXIT_INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else 1
        except EzChatError as exc:
            message, code = str(exc), EXIT_USAGE
        except OSError as exc:  # a file the user named could not be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            message, code = f"{where}{exc.strerror or exc}; check the path", EXIT_USAGE
        if message:
            print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
        if code == EXIT_INTERRUPTED:
            print(f"{PROG}: interrupted", file=sys.stderr)
        if not standalone_mode:
            return code
        sys.exit(code)


app = typer.Typer(
    cls=EzChatGroup,
    name=PROG,
    help="Talk to local GGUF language models. With no command, opens the full-screen app.",
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
formats_app = typer.Typer(help="List the prompt formats, or show one's file.")
samplers_app = typer.Typer(help="List the sampler presets, or show one's file.")
config_app = typer.Typer(help="The settings file: where it is, what it holds, change it.")
app.add_typer(formats_app, name="formats")
app.add_typer(samplers_app, name="samplers")
app.add_typer(config_app, name="config")


def main() -> None:
    """The console script ``ezchat``."""
    app(prog_name=PROG)


# --- the options every chat command shares ----------------------------------------------------

_KW = inspect.Parameter.KEYWORD_ONLY
_CONTEXT = "ezchat_context"  # a hidden parameter: typer passes the click context in it
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="PATH",
        help="GGUF model file [default: config file, $EZCHAT_MODEL, the bundled model]",
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", metavar="NAME", help="prompt format; 'auto' is the model's own template"
    ),
]
_CHAT_PARAMETERS = {
    "model": ModelOption,
    "format": FormatOption,
    "sampler": Annotated[
        str | None,
        typer.Option("--sampler", "-s", metavar="NAME", help="sampler preset (ezchat samplers)"),
    ],
    "system": Annotated[str | None, typer.Option("--system", metavar="TEXT", help="system prompt")],
    "context_length": Annotated[
        int | None,
        typer.Option("--context-length", "-c", min=MIN_CONTEXT, help="context size in tokens"),
    ],
    "n_gpu_layers": Annotated[
        int | None,
        typer.Option("--n-gpu-layers", min=-1, help="layers to offload to the GPU; -1 all"),
    ],
    "flash_attn": Annotated[
        bool | None,
        typer.Option(
            "--flash-attn/--no-flash-attn",
            help="use flash attention [default: on when --n-gpu-layers offloads any]",
            show_default=False,
        ),
    ],
    "n_threads": Annotated[
        int | None, typer.Option("--threads", "-t", min=1, help="CPU threads to use")
    ],
    "seed": Annotated[int | None, typer.Option("--seed", min=0, help="random seed for sampling")],
    "server": Annotated[
        str | None,
        typer.Option(
            "--server", metavar="URL", help="an OpenAI-compatible server to use instead of a model"
        ),
    ],
    **SERVER_LIMIT_PARAMETERS,
    "template_timeout": Annotated[
        float | None,
        typer.Option(
            "--template-timeout",
            metavar="SECONDS",
            min=0.001,
            max=1e9,
            help=f"most seconds one render of a chat template may take "
            f"[default: {jinja_render.DEFAULT_RENDER_SECONDS:g}]",
        ),
    ],
}


def chat_options(
    *, exclude: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the shared chat options (``--model``, ``--format``, ...) and pass them to
    it as one ``options: ChatOptions``. Options given before the command (``ezchat -m X chat``)
    count where the command's own are not given."""
    names = [name for name in _CHAT_PARAMETERS if name not in set(exclude)]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func, eval_str=True)
        own = [
            p.replace(kind=_KW) if p.kind is p.POSITIONAL_OR_KEYWORD else p
            for p in signature.parameters.values()
            if p.name != "options"
        ]
        shared = [
            inspect.Parameter(name, _KW, default=None, annotation=_CHAT_PARAMETERS[name])
            for name in names
        ]
        # typer passes the context to one parameter only: the command's own, or a hidden one.
        own_context = next((p.name for p in own if p.annotation is typer.Context), None)
        if own_context is None:
            shared.append(inspect.Parameter(_CONTEXT, _KW, annotation=typer.Context))
        context_name = own_context or _CONTEXT

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            chosen = {name: kwargs.pop(name) for name in names}
            context = kwargs[context_name] if own_context else kwargs.pop(_CONTEXT)
            inherited = _root_options(context)
            for name, value in chosen.items():
                if value is None and inherited is not None:
                    chosen[name] = getattr(inherited, name)
            return func(*args, options=ChatOptions(**chosen), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + shared)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in own + shared}
        return wrapper

    return decorate


def _root_options(context: typer.Context | None) -> ChatOptions | None:
    """The chat options given before the command (``ezchat -m X chat``), if any."""
    root = context.find_root() if context is not None else None
    return root.obj if root is not None and isinstance(root.obj, ChatOptions) else None


def prepare(options: ChatOptions) -> ChatOptions:
    """Apply the config file and check the format and preset names, so a typo is reported
    before the model is loaded."""
    options = options.with_config()
    jinja_render.set_render_timeout(options.template_timeout or jinja_render.DEFAULT_RENDER_SECONDS)
    if options.system is not None:
        utf8.check(options.system, "--system")
    load_sampler(options)
    if options.format and options.format.lower() != "auto":
        formats.load(options.format)
    return options


# --- the app (no command) -----------------------------------------------------------------------


def _show_version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
@chat_options()
def root(
    ctx: typer.Context,
    resume: Annotated[
        bool, typer.Option("--resume", help="reopen the last chat in the app")
    ] = False,
    max_markdown_chars: Annotated[
        int | None,
        typer.Option(
            "--max-markdown-chars",
            min=0,
            help="the longest message the app renders as Markdown; longer ones are plain "
            f"text (default: the config file's, then {MAX_MARKDOWN_CHARS:,})",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version"),
    ] = False,
    *,
    options: ChatOptions,
) -> None:
    """Talk to local GGUF models. With no command (or `ezchat MODEL.gguf`), opens the app."""
    ctx.obj = options
    if ctx.invoked_subcommand is not None:
        return
    options = prepare(options)
    if not options.server:
        read_gguf(resolve_model_path(options.model))  # a bad file is reported here, in one line
    try:
        from ..tui.app import run_app
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("ezchat.tui"):
            raise
        raise fail(
            "the full-screen app (ezchat.tui) is not part of this install; "
            "use 'ezchat chat' for the terminal chat"
        ) from None
    guard_terminal("the app")
    code = run_app(options, resume=resume, max_markdown_chars=max_markdown_chars)
    if code:
        raise typer.Exit(code)


# --- chat ---------------------------------------------------------------------------------------


@app.command()
@chat_options()
def chat(
    color: Annotated[bool, typer.Option("--color/--no-color", help="colour the chat")] = True,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="print replies as they are written")
    ] = True,
    *,
    options: ChatOptions,
) -> None:
    """Chat in the terminal (Ctrl-C stops a reply or quits; !help lists the commands)."""
    options = prepare(options)
    guard_terminal("the chat")
    model = load_model_showing_progress(options)
    thread = make_thread(model, options)
    from ..repl import interact

    header = (
        f"{model.description}, context {model.context_length}, "
        f"format {thread.format.name}, sampler {thread.sampler.name}"
    )
    if interact(thread, color=color, header=header, stream=stream):
        raise typer.Exit(EXIT_INTERRUPTED)  # Ctrl-C at the prompt, as every CLI interrupt


# --- generate and candidates ------------------------------------------------------------------------

PromptArgument = Annotated[
    str, typer.Argument(metavar="PROMPT", help="the prompt; - reads it from stdin")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print a JSON result")]


def read_prompt(prompt: str) -> str:
    if prompt != "-":
        return utf8.check(prompt, "the PROMPT argument")
    text = read_stdin()
    if not text:
        raise fail("the prompt on stdin is empty; pipe some text in or pass the prompt")
    return text


def read_stdin() -> str:
    """All of stdin as text, refused in one line where it is not UTF-8 (see ezchat.utf8).
    Read as bytes, so the rule is the same in every locale."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # replaced by a text-only stream
        return utf8.check(sys.stdin.read(), "stdin")
    return utf8.decode(buffer.read(), "stdin")


def completion_prompt(
    model: Any, options: ChatOptions, text: str, wrap: bool
) -> tuple[str | list[int], list[str | int]]:
    """The raw text, or with ``--format`` the tokens of a chat whose one user turn is ``text``
    (and the format's stop strings)."""
    if not wrap:
        return text, []
    thread = make_thread(model, options)
    thread.add_message("user", text)
    return thread.plan_prompt().tokens, list(thread.format.stops)


@app.command()
@chat_options()
def generate(
    prompt: PromptArgument,
    json_output: JsonOption = False,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", "-n", min=1, help="most tokens to generate"),
    ] = None,
    *,
    options: ChatOptions,
) -> None:
    """Stream a completion of PROMPT to stdout (--format wraps it as a user turn)."""
    text = read_prompt(prompt)
    wrap = options.format is not None  # the flag only; the config's format is for chats
    options = prepare(options)
    sampler = load_sampler(options)
    if max_tokens is not None:
        sampler = sampler.replace(max_len_tokens=max_tokens)
    model = load_model_showing_progress(options)
    tokens, stops = completion_prompt(model, options, text, wrap)
    with CancelOnSigint() as interrupt:
        generation = model.start(tokens, stops, sampler)
        interrupt.watch(generation)
        shown = VisibleStream()  # the completion is the model's text: never obeyed as controls
        for event in generation:
            if event.text and not json_output:
                sys.stdout.write(shown.push(event.text))
                sys.stdout.flush()
    result = generation.result
    if json_output:
        report = result.prompt
        print(
            json_text(
                {
                    "text": result.text,
                    "model": model.filename,
                    "stop_reason": result.stop_reason,
                    "stop_string": result.stop_string,
                    "prompt_tokens": report.prompt_tokens,
                    "prompt_tokens_evaluated": report.evaluated,
                    "prompt_tokens_reused": report.reused,
                    "prompt_seconds": round(report.seconds, 6),
                    "generated_tokens": result.n_generated,
                    "decode_seconds": round(result.decode_seconds, 6),
                    "tokens_per_second": round(result.tokens_per_second, 3),
                },
            )
        )
    else:
        print(shown.finish())
    if interrupt.requested:
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
@chat_options(exclude=["sampler"])
def candidates(
    prompt: PromptArgument,
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="how many candidates")] = 10,
    json_output: JsonOption = False,
    *,
    options: ChatOptions,
) -> None:
    """The model's most likely next tokens after PROMPT, with probabilities."""
    text = read_prompt(prompt)
    wrap = options.format is not None
    options = prepare(options)
    model = load_model_showing_progress(options)
    found = model.candidates(completion_prompt(model, options, text, wrap)[0], k)
    if json_output:
        rows = [{"id": c.id, "text": c.text, "probability": c.probability} for c in found]
        print(json_text(rows))
        return
    print_table(
        ["#", "token", "id", "probability"],
        [
            [str(rank), repr(c.text), str(c.id), f"{c.probability:.4f}"]
            for rank, c in enumerate(found, start=1)
        ],
        right={0, 2, 3},
    )


# --- info ---------------------------------------------------------------------------------------


@app.command()
def info(
    ctx: typer.Context,
    model: ModelOption = None,
    metadata: Annotated[
        bool, typer.Option("--metadata/--no-metadata", help="also list every metadata key")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """What a GGUF file holds: size, quantisation, native context, and its metadata."""
    path = resolve_model_path(model or _root_model(ctx), load_config().model)
    gguf = read_gguf(path)
    facts = gguf_facts(gguf)
    machine = machine_facts()
    if json_output:
        data: dict[str, Any] = {"facts": facts, "machine": machine}
        if metadata:
            data["metadata"] = gguf.metadata
        print(json_text(data, default=str))
        return
    print_table(["fact", "value"], [[key, _show(value)] for key, value in facts.items()])
    print()
    print_table(["this machine", "value"], [[key, _show(value)] for key, value in machine.items()])
    if metadata:
        print()
        rows = [[key, _show(value, 70)] for key, value in gguf.metadata.items()]
        print_table(["metadata key", "value"], rows)


def cpu_facts() -> dict[str, str]:
    """The CPU and the thread count ezchat picks on it: read without loading llama.cpp."""
    threads = cpu.default_thread_count()
    return {
        "threads (default)": f"{threads.count}: {threads.how}",
        "CPU": cpu.cpu_model(),
        "CPU instruction sets": " ".join(cpu.cpu_instruction_sets()) or "unknown",
    }


def machine_facts() -> dict[str, Any]:
    """What decides how fast, and whether, llama.cpp runs here: threads, its build, the CPU."""
    from ..engine.model import llama_system_info

    return {"llama.cpp build": llama_system_info(), **cpu_facts()}


@app.command()
def doctor(ctx: typer.Context, model: ModelOption = None) -> None:
    """Check that llama.cpp, as built here, runs on this CPU: decode a few tokens in a child."""
    path = resolve_model_path(model or _root_model(ctx), load_config().model)
    # this process never loads llama.cpp: the child's system-info line names the build
    for key, value in cpu_facts().items():
        print(f"{key}: {value}")
    result = self_check(str(path))
    if result.system_info:
        print(f"llama.cpp build: {result.system_info}")
    if not result.ok:
        raise fail(result.message)
    print(result.message)


def _root_model(ctx: typer.Context) -> str | None:
    options = _root_options(ctx)
    return str(options.model) if options is not None and options.model else None


def gguf_facts(gguf: GGUFInfo) -> dict[str, Any]:
    template = gguf.chat_template
    return {
        "file": str(gguf.path),
        "file size": human_bytes(gguf.path.stat().st_size),
        "name": gguf.metadata.get("general.name", gguf.path.stem),
        "architecture": gguf.architecture,
        "parameters": _human_count(gguf.n_params),
        "quantisation": gguf.quantization,
        "native context": gguf.arch_value("context_length", "unknown"),
        "RoPE base": gguf.arch_value("rope.freq_base", 10000.0),
        "layers": gguf.arch_value("block_count", "unknown"),
        "embedding size": gguf.arch_value("embedding_length", "unknown"),
        "attention heads": gguf.arch_value("attention.head_count", "unknown"),
        "vocabulary": gguf.array_lengths.get("tokenizer.ggml.tokens", "unknown"),
        "chat template": f"yes ({len(template)} characters)" if template else "no",
        **_auto_format_facts(gguf),
        "GGUF version": gguf.version,
    }


def _auto_format_facts(gguf: GGUFInfo) -> dict[str, str]:
    """Which format ``--format auto`` picks for the file and why, and whether it suits it."""
    from ..chat.auto_format import file_summary
    from ..engine.gguf import special_tokens

    summary, warning = file_summary(gguf.metadata, gguf.path.name, special_tokens(gguf.path))
    return {"format (auto)": summary, **({"format warning": warning} if warning else {})}


def _human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit} ({n:,})"
    return str(n)


def _show(value: Any, limit: int = 0) -> str:
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


# --- formats and samplers -------------------------------------------------------------------------


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
            [r["name"], r["source"], _show(r["description"], 0 if r["name"] in broken else 70)]
            for r in rows
        ],
    )


def _show_file(kind: str, name: str, what: str) -> None:
    path = userfiles.find(kind, name, what).path
    sys.stdout.write(visible(userfiles.read_user_text(path, f"a {what} file")))


@formats_app.callback(invoke_without_command=True)
def formats_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the prompt formats: name, where it comes from (shipped or user file)."""
    if ctx.invoked_subcommand is None:
        _list_files(formats.sources(), lambda name: formats.load(name).description, json_output)


@formats_app.command("show")
def formats_show(name: Annotated[str, typer.Argument(help="a format name")]) -> None:
    """Print a format's TOML file."""
    _show_file(formats.KIND, name, "format")


@samplers_app.callback(invoke_without_command=True)
def samplers_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the sampler presets: name, where it comes from (shipped or user file)."""
    if ctx.invoked_subcommand is None:
        _list_files(samplers.sources(), samplers.description, json_output)


@samplers_app.command("show")
def samplers_show(name: Annotated[str, typer.Argument(help="a sampler preset name")]) -> None:
    """Print a sampler preset's TOML file."""
    _show_file(samplers.KIND, name, "sampler preset")


# --- prompt -------------------------------------------------------------------------------------


@app.command()
def prompt(
    ctx: typer.Context,
    messages: Annotated[
        str,
        typer.Argument(
            metavar="MESSAGES.json",
            help='[{"role": ..., "content": ...}, ...] or a chat saved by the REPL; - for stdin',
        ),
    ],
    format: FormatOption = None,
    model: ModelOption = None,
    generation_prompt: Annotated[
        bool,
        typer.Option(
            "--generation-prompt/--no-generation-prompt",
            help="end with the start of the bot's turn",
        ),
    ] = True,
) -> None:
    """Print the exact prompt text a format makes of a conversation."""
    chat = _read_messages(messages)
    name = format or chat.format or load_config().format or "auto"
    if name.lower() == "auto":
        options = prepare(ChatOptions(model=model or _root_model(ctx), format="auto"))
        fmt = make_thread(load_model_showing_progress(options), options).format
    else:
        fmt = formats.load(name)
    # exact but for terminal controls, which a chat template or the messages can hold
    sys.stdout.write(visible(fmt.render(chat.messages, add_generation_prompt=generation_prompt)))


def _read_messages(source: str) -> ChatFile:
    if source == "-":
        return parse_chat_text(read_stdin(), "stdin")
    return read_chat_file(source)


# --- config -------------------------------------------------------------------------------------


def _plain_type(hint: Any) -> type:
    """``int | None`` -> int, ``dict[str, str]`` -> dict."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    return typing.get_origin(hint) or hint


_CONFIG_TYPES = {name: _plain_type(hint) for name, hint in typing.get_type_hints(Config).items()}


@config_app.command("path")
def config_path_command() -> None:
    """Print where the settings file is (it may not exist yet)."""
    print(config_path())


@config_app.command("show")
def config_show() -> None:
    """Print every setting; unset ones use the default."""
    config = load_config()
    for item in fields(Config):
        value = getattr(config, item.name)
        if item.name == "keymap":
            shown = ", ".join(f"{k}={v}" for k, v in value.items()) or "(default)"
        else:
            shown = "(default)" if value is None else _show(value)
        print(visible(f"{item.name} = {shown}"))


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="a setting, e.g. sampler")],
    value: Annotated[str, typer.Argument(help="its new value")],
) -> None:
    """Change one setting in the settings file."""
    kind = _config_type(key)
    parsed = _parse_config_value(key, value, kind)
    _check_config_value(key, parsed)
    if key == "model":  # so a relative path means the same from any folder
        parsed = str(Path(parsed).expanduser().resolve())
    config = load_config()
    setattr(config, key, parsed)
    path = save_config(config)
    print(f"{key} = {_show(parsed)}  ({path})")


@config_app.command("unset")
def config_unset(key: Annotated[str, typer.Argument(help="a setting, e.g. sampler")]) -> None:
    """Remove one setting from the settings file (back to the default)."""
    kind = _config_type(key)
    config = load_config()
    setattr(config, key, {} if kind is dict else None)
    save_config(config)
    print(f"{key} = (default)")


def _config_type(key: str) -> type:
    if key not in _CONFIG_TYPES:
        raise fail(f"unknown setting {key!r}; choose one of {', '.join(_CONFIG_TYPES)}")
    return _CONFIG_TYPES[key]


def _parse_config_value(key: str, value: str, kind: type) -> Any:
    if kind is dict:
        raise fail(f"{key} is a table; edit it in {config_path()}")
    if kind is bool:
        lowered = value.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise fail(f"{key} must be true or false, got {value!r}")
    if kind is int:
        try:
            return int(value)
        except ValueError:
            raise fail(f"{key} must be a whole number, got {value!r}") from None
    if kind is float:  # the server limits: positive, finite
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and number > 0):
            raise fail(f"{key} must be a positive number, got {value!r}")
        return number
    return value


def _check_config_value(key: str, value: Any) -> None:
    """Names and paths are checked now rather than at the next start."""
    if key == "sampler":
        samplers.load(value)
    elif key == "format" and value.lower() != "auto":
        formats.load(value)
    elif key == "model":
        read_gguf(value)
    elif key == "context_length" and value < MIN_CONTEXT:
        raise fail(f"context_length must be at least {MIN_CONTEXT}, got {value}")


def _register_runner_commands() -> None:
    # The runners own their command (batch); it is added last so its module stays the one
    # place that knows its options.
    from .batch import register

    register(app)


_register_runner_commands()
