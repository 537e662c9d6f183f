"""What a server can and cannot do of what a local ``ez.Model`` offers, in one place.

A server keeps its KV cache to itself, so there is no state to save, restore or clear from
here: those calls say so in one line (``NotSupportedError``) where the user asks for them,
instead of failing with an AttributeError. Grammars are GBNF, which llama.cpp's own server
and llama-cpp-python's take as the ``grammar`` field; other engines (vLLM, OpenAI) do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..chat.samplers import SamplerSettings
from ..errors import NotSupportedError
from .servers import LLAMA_CPP, LLAMA_CPP_PYTHON

if TYPE_CHECKING:
    from .servers import ServerInfo

GBNF_KINDS = (LLAMA_CPP, LLAMA_CPP_PYTHON)


def grammar_fields(info: ServerInfo, grammar: str | None, where: str) -> dict[str, Any]:
    """The request field that constrains the reply to ``grammar`` (GBNF, root rule ``root``)."""
    if grammar is None:
        return {}
    if info.kind in GBNF_KINDS:
        return {"grammar": grammar}
    raise NotSupportedError(
        f"the server at {where} ({info.kind}) takes no GBNF grammar, so typed output cannot "
        "be enforced there; use llama.cpp's llama-server, llama-cpp-python's server or a "
        "local GGUF file"
    )


class ServerCacheCalls:
    """The cache calls of ``ez.Model`` on a server: ingesting works (the server keeps the
    prompt in its slot), the rest say in one line why they cannot."""

    base_url: str
    can_save_state = False  # read by storage before it saves a chat's KV state

    def _no_state(self, what: str) -> NotSupportedError:
        return NotSupportedError(
            f"cannot {what}: the server at {self.base_url} keeps its KV cache to itself; "
            "the chat's messages are saved instead, and the server evaluates them again"
        )

    def save_state(self) -> tuple[list[int], bytes]:
        raise self._no_state("save the KV state")

    def load_state(self, tokens: list[int], state: bytes) -> bool:
        raise self._no_state("load a KV state")

    def reset_cache(self) -> None:
        raise NotSupportedError(
            f"cannot clear the cache of the server at {self.base_url} from here: it manages "
            "its own; restart the server to clear it"
        )

    def ingest(self, prompt: str | list[int]) -> None:
        """Have the server evaluate ``prompt`` into its prompt cache (one greedy token is
        generated and dropped), so a generation that starts with it begins at once."""
        self.start(prompt, sampler=SamplerSettings(temp=0.0, max_len_tokens=1)).run()  # type: ignore[attr-defined]
