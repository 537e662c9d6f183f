"""The kinds of server ezchat can talk to, and what differs between them.

All speak OpenAI's ``/v1/completions`` and ``/v1/chat/completions``; they differ in how they
tokenize, whether a prompt may be token ids, the names of sampler settings beyond OpenAI's,
how per-token log-probabilities come back, and where the context size is reported:

==================  ==========================  ==============  =========================
kind                tokenize / detokenize       prompt as ids   context size
==================  ==========================  ==============  =========================
llama.cpp           /tokenize, /detokenize      yes             /props n_ctx
vllm                /tokenize, /detokenize      yes             /v1/models max_model_len
llama-cpp-python    /extras/(de)tokenize        no (text)       not reported (2048)
openai (other)      estimated locally           no (text)       /v1/models, else 2048
==================  ==========================  ==============  =========================
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..chat.samplers import SamplerSettings, recent_window
from .http import RemoteError, ServerClient

LLAMA_CPP = "llama.cpp"
VLLM = "vllm"
LLAMA_CPP_PYTHON = "llama-cpp-python"
OPENAI = "openai"

# llama-cpp-python's server starts with this context unless told otherwise, and reports none.
FALLBACK_CONTEXT = 2048
_TOKEN_ID = re.compile(r"^token_id:(-?\d+)$")  # vLLM's return_tokens_as_token_ids


@dataclass(slots=True)
class ServerInfo:
    """What the server told about itself when ezchat connected."""

    kind: str
    model_id: str | None = None
    context_length: int | None = None
    chat_template: str = ""
    bos_text: str = ""
    eos_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def takes_token_prompts(self) -> bool:
        """Whether ``prompt`` may be a list of token ids (exactly what the Thread built)."""
        return self.kind in (LLAMA_CPP, VLLM)

    @property
    def tokenizes(self) -> bool:
        return self.kind != OPENAI


def detect(client: ServerClient, model: str | None) -> ServerInfo:
    """Ask the server what it is: llama.cpp answers ``/props``, vLLM reports
    ``max_model_len`` per model, llama-cpp-python has ``/extras/tokenize``."""
    props = client.get("/props", missing_ok=True)
    models = client.get("/v1/models", missing_ok=True)
    entries = [m for m in (models or {}).get("data", []) if isinstance(m, dict)]
    entry = _pick_model(entries, model)
    model_id = model or (str(entry.get("id")) if entry else None)
    if isinstance(props, dict) and "default_generation_settings" in props:
        settings = props.get("default_generation_settings") or {}
        n_ctx = settings.get("n_ctx") or (entry or {}).get("meta", {}).get("n_ctx")
        return ServerInfo(
            LLAMA_CPP,
            model_id,
            _positive(n_ctx),
            chat_template=str(props.get("chat_template") or ""),
            bos_text=str(props.get("bos_token") or ""),
            eos_text=str(props.get("eos_token") or ""),
            extra={"model_path": props.get("model_path", "")},
        )
    if entry and "max_model_len" in entry:
        return ServerInfo(VLLM, model_id, _positive(entry.get("max_model_len")))
    try:
        probe = client.post("/extras/tokenize", {"input": "x"}, missing_ok=True)
    except RemoteError:
        probe = None
    if isinstance(probe, dict) and "tokens" in probe:
        return ServerInfo(LLAMA_CPP_PYTHON, model_id, None)
    reported = None
    for key in ("context_length", "max_context_length", "context_window", "max_model_len"):
        reported = reported or _positive((entry or {}).get(key))
    return ServerInfo(OPENAI, model_id, reported)


def _pick_model(entries: list[dict[str, Any]], model: str | None) -> dict[str, Any] | None:
    if not entries:
        return None
    if model is None:
        return entries[0]
    for entry in entries:
        if entry.get("id") == model:
            return entry
    names = ", ".join(str(e.get("id")) for e in entries[:5])
    raise RemoteError(f"the server has no model {model!r}; it serves: {names}")


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


# --- requests -----------------------------------------------------------------------------------


def sampling_fields(
    kind: str, sampler: SamplerSettings, max_tokens: int, n_ctx: int
) -> dict[str, Any]:
    """The request fields for ``sampler``: OpenAI's names everywhere, the engine's own names
    for the rest. Settings a kind does not know are left out rather than refused. llama-server
    refuses -1 ("the whole context") for its penalty windows, so they go as ``n_ctx``."""
    s = sampler
    greedy = s.is_greedy
    body: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": 0.0 if greedy else s.temp,
        "top_p": 1.0 if greedy else s.top_p,
        "frequency_penalty": s.frequency_penalty,
        "presence_penalty": s.presence_penalty,
    }
    if s.seed >= 0:
        body["seed"] = s.seed
    if kind == OPENAI:
        return body
    body["min_p"] = 0.0 if greedy else s.min_p
    if s.top_k > 0 or greedy:
        body["top_k"] = 1 if greedy else s.top_k
    if kind == VLLM:
        body["repetition_penalty"] = s.repeat_penalty
        return body
    body["repeat_penalty"] = s.repeat_penalty
    body["typical_p"] = s.typical_p
    body["mirostat_mode" if kind == LLAMA_CPP_PYTHON else "mirostat"] = s.mirostat_mode
    # llama-cpp-python validates these more narrowly than llama.cpp does.
    body["mirostat_tau"] = min(s.mirostat_tau, 10.0)
    body["mirostat_eta"] = max(s.mirostat_eta, 0.001)
    if kind == LLAMA_CPP:
        body.update(
            repeat_last_n=recent_window(s.penalty_last_n, n_ctx),
            dry_multiplier=s.dry_multiplier,
            dry_base=s.dry_base,
            dry_allowed_length=s.dry_allowed_length,
            dry_penalty_last_n=recent_window(s.dry_penalty_last_n, n_ctx),
            dry_sequence_breakers=list(s.dry_sequence_breakers),
            xtc_probability=s.xtc_probability,
            xtc_threshold=s.xtc_threshold,
            top_n_sigma=s.top_n_sigma,
            dynatemp_range=s.dynatemp_range,
            dynatemp_exponent=s.dynatemp_exponent,
            cache_prompt=True,
        )
    return body


def logprob_fields(kind: str, k: int, chat: bool) -> dict[str, Any]:
    """Ask for the top ``k`` log-probabilities per token. llama.cpp and vLLM are asked for at
    least one even when no candidates are wanted: that is how they tell the token ids."""
    if kind in (LLAMA_CPP, VLLM):
        k = max(k, 1)
    if k <= 0:
        return {}
    body: dict[str, Any] = {"logprobs": True, "top_logprobs": k} if chat else {"logprobs": k}
    if kind == LLAMA_CPP:
        body["n_probs"] = k
    if kind == VLLM:
        body["return_tokens_as_token_ids"] = True
    return body


# --- answers ------------------------------------------------------------------------------------


@dataclass(slots=True)
class TokenInfo:
    """One generated token as a stream reports it; ``id`` is None where the server does not
    say, ``candidates`` are ``(id or None, text, probability)``, most likely first."""

    id: int | None
    text: str
    piece: bytes | None = None
    candidates: list[tuple[int | None, str, float]] | None = None
    probability: float | None = None  # the token's own, where the server sends it


@dataclass(slots=True)
class Chunk:
    text: str
    tokens: list[TokenInfo]
    finish_reason: str | None
    usage: dict[str, Any] | None
    timings: dict[str, Any] | None


class OddField(ValueError):
    """A field of a server's answer of the wrong type or out of range; says which."""


def parse_chunk(event: dict[str, Any]) -> Chunk:
    """One streamed (or whole) completion or chat completion, whatever the engine. A field of
    the wrong type or out of range raises ``OddField``: the server's mistake, which must not
    reach the reply's text, its token ids (stored as int32) or its figures."""
    choices = event.get("choices") or []
    choice = choices[0] if choices else {}
    if "delta" in choice or "message" in choice:
        message = choice.get("delta") or choice.get("message") or {}
        text = message.get("content") or ""
    else:
        text = choice.get("text") or ""
    if not isinstance(text, str):
        raise OddField(f"its text is not a string but {type(text).__name__}")
    finish = choice.get("finish_reason")
    return Chunk(
        text=text,
        tokens=_token_infos(choice.get("logprobs")),
        finish_reason=str(finish) if finish is not None else None,
        usage=_figures(event.get("usage"), "usage", _USAGE_COUNTS),
        timings=_figures(event.get("timings"), "timings", _TIMINGS_COUNTS),
    )


# The figures ezchat reads from ``usage`` and ``timings`` (streaming._eval_report): counts of
# tokens, and milliseconds. The others are left as the server sent them, unread.
_USAGE_COUNTS = ("prompt_tokens",)
_TIMINGS_COUNTS = ("prompt_n", "cache_n", "prompt_ms")
_MOST_TOKENS = 2**31 - 1  # token ids and counts are stored as int32


def _figures(value: Any, what: str, names: tuple[str, ...]) -> dict[str, Any] | None:
    """``usage`` or ``timings`` with the figures ezchat reads checked: each a finite number
    from 0 to 2**31 - 1 where present."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OddField(f"{what} is not an object but {type(value).__name__}")
    for name in names:
        if value.get(name) is not None:
            _figure(value[name], f"{what}.{name}")
    details = value.get("prompt_tokens_details")
    if details is not None:
        if not isinstance(details, dict):
            raise OddField(f"{what}.prompt_tokens_details is not an object")
        if details.get("cached_tokens") is not None:
            _figure(details["cached_tokens"], f"{what}.prompt_tokens_details.cached_tokens")
    return value


def _figure(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OddField(f"{name} is not a number")
    if not (math.isfinite(value) and 0 <= value <= _MOST_TOKENS):
        raise OddField(f"{name} is out of range")
    return value


def checked_token_id(value: Any) -> int:
    """A token id as a server sends it: a whole number that fits the int32 it is stored as."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MOST_TOKENS:
        raise OddField(f"a token id ({str(value)[:20]}) is not a whole number from 0 to 2**31 - 1")
    return value


def _token_infos(logprobs: Any) -> list[TokenInfo]:
    if not isinstance(logprobs, dict):
        return []
    if isinstance(logprobs.get("content"), list):  # chat form; llama.cpp uses it everywhere
        return [_entry_info(entry) for entry in logprobs["content"] if isinstance(entry, dict)]
    tokens = logprobs.get("tokens") or []
    tops = logprobs.get("top_logprobs") or []
    own = logprobs.get("token_logprobs") or []
    infos = []
    for index, token in enumerate(tokens):
        top = tops[index] if index < len(tops) else None
        token_id, text = _split_token(str(token))
        candidates = None
        if isinstance(top, dict):
            ranked = sorted(top.items(), key=lambda item: item[1] or -math.inf, reverse=True)
            candidates = [(*_split_token(str(t)), _prob(lp)) for t, lp in ranked]
        probability = _prob(own[index]) if index < len(own) and own[index] is not None else None
        infos.append(TokenInfo(token_id, text, None, candidates, probability))
    return infos


def _entry_info(entry: dict[str, Any]) -> TokenInfo:
    token_id, text = _split_token(str(entry.get("token", "")))
    if entry.get("id") is not None:
        token_id = checked_token_id(entry["id"])
    raw = entry.get("bytes")
    piece = bytes(raw) if isinstance(raw, list) else None
    candidates = None
    tops = entry.get("top_logprobs")
    if isinstance(tops, list):
        candidates = []
        for top in tops:
            top_id, top_text = _split_token(str(top.get("token", "")))
            if top.get("id") is not None:
                top_id = checked_token_id(top["id"])
            candidates.append((top_id, top_text, _prob(top.get("logprob"))))
        candidates.sort(key=lambda c: c[2], reverse=True)
    own = entry.get("logprob")
    probability = _prob(own) if own is not None else None
    return TokenInfo(token_id, text, piece, candidates, probability)


def _split_token(token: str) -> tuple[int | None, str]:
    match = _TOKEN_ID.match(token)
    return (checked_token_id(int(match.group(1))), "") if match else (None, token)


def _prob(logprob: Any) -> float:
    """A probability from a log-probability; 0 for what is not one (NaN, infinities, a
    positive log-probability, text), so that nothing draws as "nan%" or past 100%."""
    try:
        value = float(logprob)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not math.isfinite(value) or value > 1e-6:
        return 0.0
    return min(1.0, math.exp(value))
