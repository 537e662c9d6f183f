"""The engines ezchat can chat with: ``Backend`` is what the Thread and the interfaces need;
``ez.Model`` (llama-cpp-python, in ezchat/engine/model.py) and ``RemoteModel`` (an OpenAI-compatible
server) provide it."""

from __future__ import annotations

from .base import Backend, Running
from .http import RemoteError, ServerUnavailableError
from .remote import RemoteModel
from .streaming import RemoteGeneration

__all__ = [
    "Backend",
    "RemoteError",
    "RemoteGeneration",
    "RemoteModel",
    "Running",
    "ServerUnavailableError",
]
