"""What the ``ezchat`` commands share: the chat options (``--model``, ``--format``, ...) and
the decorator that gives them to a command, the options given before the command, the config
file applied to them, the prompt read from an argument or stdin, and ``fail``.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from .. import utf8
from ..chat import formats, jinja_render
from ..errors import EzChatError
from ..session import ChatOptions, load_sampler
from .server_options import SERVER_LIMIT_PARAMETERS

PROG = "ezchat"
MIN_CONTEXT = 16


def fail(message: str) -> EzChatError:
    """A user error found by the CLI itself, to raise; ``EzChatGroup.main`` shows it."""
    return EzChatError(message)


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
CHAT_PARAMETERS = {
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
    "thinking": Annotated[
        bool | None,
        typer.Option(
            "--thinking/--no-thinking",
            help="switch a reasoning model's thinking on or off, where its template takes "
            "enable_thinking [default: the template's]",
            show_default=False,
        ),
    ],
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
    names = [name for name in CHAT_PARAMETERS if name not in set(exclude)]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func, eval_str=True)
        own = [
            p.replace(kind=_KW) if p.kind is p.POSITIONAL_OR_KEYWORD else p
            for p in signature.parameters.values()
            if p.name != "options"
        ]
        shared = [
            inspect.Parameter(name, _KW, default=None, annotation=CHAT_PARAMETERS[name])
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
            inherited = root_options(context)
            for name, value in chosen.items():
                if value is None and inherited is not None:
                    chosen[name] = getattr(inherited, name)
            return func(*args, options=ChatOptions(**chosen), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + shared)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in own + shared}
        return wrapper

    return decorate


def root_options(context: typer.Context | None) -> ChatOptions | None:
    """The chat options given before the command (``ezchat -m X chat``), if any."""
    root = context.find_root() if context is not None else None
    return root.obj if root is not None and isinstance(root.obj, ChatOptions) else None


def apply_template_limits(seconds: float | None, megabytes: float | None) -> None:
    """The bounds on a chat template's compile and renders (None: the default)."""
    jinja_render.set_render_timeout(seconds or jinja_render.DEFAULT_RENDER_SECONDS)
    jinja_render.set_render_memory(megabytes or jinja_render.DEFAULT_RENDER_MEMORY_MB)


def prepare(options: ChatOptions) -> ChatOptions:
    """Apply the config file and check the format and preset names, so a typo is reported
    before the model is loaded."""
    options = options.with_config()
    apply_template_limits(options.template_timeout, options.template_memory_mb)
    if options.system is not None:
        utf8.check(options.system, "--system")
    load_sampler(options)
    if options.format and options.format.lower() != "auto":
        formats.load(options.format)
    return options


def root_model(ctx: typer.Context) -> str | None:
    """The ``--model`` given before the command (``ezchat -m X info``), if any."""
    options = root_options(ctx)
    return str(options.model) if options is not None and options.model else None


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
