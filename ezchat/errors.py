"""Errors that users cause. Each carries a one-line message that names the thing and the fix;
the interfaces show ``str(error)`` and nothing else."""

from __future__ import annotations


class EzChatError(Exception):
    """Base of every error a user can cause; ``str()`` is the one line to show."""


class ModelLoadError(EzChatError):
    """The model file is missing, not GGUF, truncated, or llama.cpp refused it."""


class LoadCancelled(ModelLoadError):
    """A model load stopped because its progress report asked (see ``Model(progress=...)``)."""


class ModelUnloadedException(EzChatError):
    """The Model was used after ``unload()``."""


class StoreError(EzChatError):
    """The saved-chats file cannot be used, or a chat or message it names does not exist."""


class UserFileError(EzChatError):
    """A format, sampler or config file that a user edits is malformed."""


class UnknownNameError(EzChatError, KeyError):
    """A format or sampler preset name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidTextError(EzChatError):
    """Input that is not UTF-8 text: a byte from another encoding, or a lone surrogate."""


class PromptTooLongError(EzChatError):
    """A prompt that cannot fit in the context even after truncation."""


class GenerationError(EzChatError):
    """llama.cpp failed while evaluating or sampling."""


class NotSupportedError(EzChatError):
    """The backend cannot do what was asked (a server has no KV state to hand over, or takes
    no grammar); the message says what it cannot do and what can."""


class TemplateLimitError(EzChatError):
    """A chat template that ran past the render time or size bound (a loop without end)."""
