"""ezchat: talk to local GGUF language models.

import ezchat as ez
model = ez.Model(ez.default_model_path())
thread = ez.Thread(model, "auto", ez.samplers.GreedyDecoding)
thread.send("Hello!")
"""

from __future__ import annotations

# the old public module paths (ezchat.model, ...), as attributes of the package too
from . import model, runners, thread  # noqa: F401
from .backends import Backend, RemoteError, RemoteModel
from .chat import formats, samplers
from .chat.samplers import SamplerSettings
from .chat.thread import Message, Thread, register_terminal_chat
from .engine.model import Model
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

__version__ = "0.1.0"


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
    "Message",
    "Model",
    "ModelLoadError",
    "NotSupportedError",
    "ModelUnloadedException",
    "PromptTooLongError",
    "SamplerSettings",
    "StoreError",
    "Thread",
    "UnknownNameError",
    "UserFileError",
    "default_model_path",
    "formats",
    "resolve_model_path",
    "runners",
    "samplers",
    "__version__",
]
