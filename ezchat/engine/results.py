"""What a generation produces, as plain data: the events, the result, the prompt's cost, the
candidates, and the load-progress callback's type.

Kept free of llama_cpp (tests/test_layers.py checks it), so the remote backends, the Thread
and storage can name these types without loading the native library; the engine's modules
that drive llama.cpp import them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ProgressReport = Callable[[float], "bool | None"]
"""Called with the fraction loaded (or connected), 0.0 to 1.0; returning ``False`` abandons it."""


@dataclass(slots=True)
class EvalReport:
    """What one ``prepare`` call cost: how much was reused, shifted and evaluated."""

    prompt_tokens: int = 0
    reused: int = 0
    shifted: int = 0
    evaluated: int = 0
    seconds: float = 0.0


class Candidate(tuple):
    """``(text, probability)``, as easy-llama returns it, that also knows its token ``id`` (so a
    user interface can branch a reply at that token)."""

    id: int

    def __new__(cls, text: str, probability: float, id: int) -> Candidate:
        # np.float64 is both the np.floating easy-llama documents and a Python float, so a
        # candidate serialises (JSON, SQLite) like any other number.
        candidate = super().__new__(cls, (text, np.float64(probability)))
        candidate.id = id
        return candidate

    @property
    def text(self) -> str:
        return self[0]

    @property
    def probability(self) -> np.float64:
        return self[1]

    def __getnewargs__(self) -> tuple[str, np.float64, int]:
        return (self[0], self[1], self.id)


@dataclass(slots=True)
class TokenEvent:
    """One generated token: its id, the text it made showable, and optionally the top-k
    candidates the model weighed at this position (full-softmax probabilities)."""

    id: int
    text: str
    candidates: list[Candidate] | None = None


@dataclass(slots=True)
class GenerationResult:
    text: str = ""
    tokens: list[int] = field(default_factory=list)
    # "eog" (end-of-generation token), "stop_token", "stop_string", "length", "cancelled",
    # "context_full"
    stop_reason: str = ""
    stop_string: str | None = None
    prompt: EvalReport = field(default_factory=EvalReport)
    decode_seconds: float = 0.0
    # how the model weighed each generated token (ezchat.chat.tree.TokenInfo), aligned with
    # ``tokens``; None where the backend did not measure it
    token_info: list | None = None

    @property
    def n_generated(self) -> int:
        return len(self.tokens)

    @property
    def tokens_per_second(self) -> float:
        return self.n_generated / self.decode_seconds if self.decode_seconds > 0 else 0.0
