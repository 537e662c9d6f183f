"""ezchat: talk to local GGUF language models.

import ezchat as ez
model = ez.Model(ez.default_model_path())
thread = ez.Thread(model, "auto", ez.samplers.GreedyDecoding)
thread.send("Hello!")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# interrupt first: a Ctrl-C while the rest imports ends the ezchat command in one line;
# thread: the old public module paths (ezchat.thread, ...), as attributes of the package too
from . import interrupt, thread  # noqa: F401
from .backends import Backend, RemoteError, RemoteModel
from .chat import formats, samplers
from .chat.reply_kind import ReplyKind
from .chat.samplers import SamplerSettings
from .chat.thread import Message, Thread, register_terminal_chat
from .chat.tree import Made, Node, Origin, TokenInfo, Tree
from .errors import (
    EzChatError,
    GenerationError,
    InvalidTextError,
    LoadCancelled,
    ModelLoadError,
    ModelUnloadedException,
    NotSupportedError,
    PromptTooLongError,
    StoreError,
    UnknownNameError,
    UserFileError,
)
from .settings.modelpath import default_model_path, resolve_model_path
from .storage.store import ChatStore

if TYPE_CHECKING:
    from . import model, runners  # noqa: F401
    from .engine.model import Model

__version__ = "0.1.0"

# The names whose modules load llama_cpp are imported on first use, so that importing any part
# of ezchat (a RemoteModel, a Thread, the store, the session) does not load the native library.
# Written as plain imports so that the layer contract (tests/test_layers.py) sees these arrows.
_LOADED_ON_USE = ("Model", "model", "runners")


def __getattr__(name: str) -> Any:
    if name == "Model":
        from .engine.model import Model

        globals()[name] = Model  # later lookups find it without this function
        return Model
    # ``from . import model`` would ask this function again (it tests the attribute first);
    # importing a submodule by its full name sets the package's attribute instead.
    if name == "model":
        import ezchat.model  # the old path of ezchat.engine.model
    elif name == "runners":
        import ezchat.runners  # noqa: F401
    else:
        raise AttributeError(f"module 'ezchat' has no attribute {name!r}")
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LOADED_ON_USE))


def _terminal_chat(chat: Thread, **options: object) -> None:
    from .repl import interact  # prompt-toolkit loads only when a terminal chat starts

    interact(chat, **options)


# Thread.interact runs the REPL, which sits above the conversation layer: registered from here.
register_terminal_chat(_terminal_chat)

__all__ = [
    "Backend",
    "ChatStore",
    "RemoteError",
    "RemoteModel",
    "EzChatError",
    "GenerationError",
    "InvalidTextError",
    "LoadCancelled",
    "Made",
    "Message",
    "Model",
    "ModelLoadError",
    "Node",
    "NotSupportedError",
    "Origin",
    "ModelUnloadedException",
    "PromptTooLongError",
    "ReplyKind",
    "SamplerSettings",
    "StoreError",
    "Thread",
    "TokenInfo",
    "Tree",
    "UnknownNameError",
    "UserFileError",
    "default_model_path",
    "formats",
    "resolve_model_path",
    "runners",
    "samplers",
    "__version__",
]
