"""What the Thread, the TUI, the REPL and the runners use from a model.

``ez.Model`` (a GGUF file in llama-cpp-python) and ``ez.RemoteModel`` (a model served over
HTTP) both satisfy ``Backend``, so everything above them works the same with either. The
protocol lists exactly what those callers touch; anything else a backend offers (a local
model's ``save_state``, a remote one's ``base_url``) is theirs alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..chat.samplers import SamplerSettings
    from ..engine.results import Candidate, EvalReport, GenerationResult, TokenEvent


@runtime_checkable
class Running(Protocol):
    """One generation in progress: iterate it for ``TokenEvent``s; ``cancel()`` from any thread
    stops it with the partial reply kept; ``result`` is complete once iteration ends."""

    result: GenerationResult

    def __iter__(self) -> Iterator[TokenEvent]: ...

    def cancel(self) -> None: ...

    def run(self) -> GenerationResult:
        """Iterate to the end; the result."""
        ...

    def candidates_only_on_request(self) -> bool:
        """Attach candidates only to the token after each ``request_candidates()`` (a display
        on a timer needs no more); False where the backend keeps them on every token."""
        ...

    def request_candidates(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A language model that ezchat can chat with."""

    # --- facts ---------------------------------------------------------------------------------
    # llama.cpp runs in this process: batches, grammars, the KV cache and its shifts are
    # ezchat's to drive, and a prompt needs a real format (no server applies a template)
    runs_in_process: bool
    context_length: int  # tokens the prompt and reply share
    n_ctx: int  # the same number, under llama.cpp's name
    bos_token: int  # the id a prompt starts with when ``add_bos``
    eos_token: int  # -1 where the backend cannot tell
    add_bos: bool
    metadata: dict[str, Any]  # GGUF-style keys; ``tokenizer.chat_template`` feeds "auto"
    can_save_state: bool  # whether save_state/load_state work (not on a server: capabilities.py)

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str:
        """The model in a few words for a header: a local file's name and quantisation, a
        served model's name and its server."""
        ...

    @property
    def is_loaded(self) -> bool: ...

    @property
    def last_eval(self) -> EvalReport: ...

    # --- tokens --------------------------------------------------------------------------------
    def tokenize(
        self, text: str, add_bos: bool | None = None, special: bool = True
    ) -> list[int]: ...

    def detokenize(self, tokens: Iterable[int], special: bool = False) -> str: ...

    def token_text(self, token: int) -> str: ...

    def get_length(self, text: str) -> int: ...

    # --- running -------------------------------------------------------------------------------
    def start(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
        candidates: int = 0,
        *,
        allow_shift: bool = False,
        token_info: bool = False,
    ) -> Running: ...

    def generate(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
    ) -> str: ...

    def stream(
        self,
        prompt: str | list[int],
        stops: list[str | int] | None = None,
        sampler: SamplerSettings | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def candidates(self, prompt: str | list[int], k: int) -> list[Candidate]: ...

    def context_fingerprint(self) -> str:
        """What a cached answer from this model is valid for."""
        ...

    def unload(self) -> None: ...
