"""A RemoteModel's tokens: text to the server's ids and back, with what ezchat remembers of
each id sequence's text (so text is rebuilt exactly, special tokens included), estimated ids
where a server cannot tokenize, and the server format's role markers."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .http import RemoteError, ServerClient
from .servers import LLAMA_CPP, LLAMA_CPP_PYTHON, VLLM, ServerInfo, checked_token_id
from .streaming import SHAPE_ERRORS
from .tokens import (
    MARKER_IDS,
    MARKER_TEXT,
    EstimatedVocab,
    TokenMemory,
    is_estimated,
    is_marker,
    split_markers,
)


class RemoteTokenCalls:
    """Mixed into ``RemoteModel``, which connects, probes the BOS token and sets the memories."""

    base_url: str
    model_id: str | None
    info: ServerInfo
    add_bos: bool
    bos_token: int
    _memory: TokenMemory
    _estimated: EstimatedVocab
    _token_texts: dict[int, str]
    _require: Callable[[], ServerClient]
    _odd_answer: Callable[[], str]

    def tokenize(self, text: str, add_bos: bool | None = None, special: bool = True) -> list[int]:
        """Text to the server's token ids (estimated ids where it cannot tokenize).
        ``special=False`` keeps ``<|im_end|>`` as text where the server can (llama.cpp; the
        other engines always parse special tokens)."""
        self._require()
        if add_bos is None:
            add_bos = self.add_bos
        head = [self.bos_token] if add_bos and self.bos_token >= 0 else []
        if special and "\ue000" in text:
            body: list[int] = []
            for part in split_markers(text):
                marker = MARKER_IDS.get(part)
                body += [marker] if marker is not None else self._tokenize_text(part, special)
            return head + body
        return head + self._tokenize_text(text, special)

    def _tokenize_text(self, text: str, special: bool) -> list[int]:
        if not text:
            return []
        if not self.info.tokenizes:
            return self._estimated.tokenize(text)
        try:
            tokens = self._server_tokenize(text, add_bos=False, special=special)
        except SHAPE_ERRORS:
            raise RemoteError(self._odd_answer()) from None
        self._memory.remember(tokens, text)
        return tokens

    def _server_tokenize(self, text: str, add_bos: bool, special: bool) -> list[int]:
        client = self._require()
        kind = self.info.kind
        if kind == LLAMA_CPP:
            answer = client.post(
                "/tokenize",
                {
                    "content": text,
                    "add_special": add_bos,
                    "parse_special": special,
                    "with_pieces": True,
                },
            )
            tokens = []
            for item in answer.get("tokens", []):
                if isinstance(item, dict):
                    piece = item.get("piece", "")
                    data = bytes(piece) if isinstance(piece, list) else str(piece).encode()
                    token = checked_token_id(item["id"])
                    self._memory.remember_piece(token, data)
                    tokens.append(token)
                else:
                    tokens.append(checked_token_id(item))
            return tokens
        if kind == VLLM:
            answer = client.post(
                "/tokenize",
                {"model": self.model_id, "prompt": text, "add_special_tokens": add_bos},
            )
            return [checked_token_id(t) for t in answer.get("tokens", [])]
        body = {"input": text}
        if self.model_id:
            body["model"] = self.model_id
        answer = client.post("/extras/tokenize", body)
        tokens = [checked_token_id(t) for t in answer.get("tokens", [])]
        # llama-cpp-python adds the BOS token whenever the model asks for one.
        bos = getattr(self, "bos_token", -1)
        if not add_bos and getattr(self, "add_bos", False) and tokens[:1] == [bos]:
            tokens = tokens[1:]
        return tokens

    def _probe_bos(self) -> tuple[bool, int]:
        """Whether the server starts prompts with a BOS token, and its id."""
        if not self.info.tokenizes:
            return False, -1
        with_special = self._server_tokenize("", add_bos=True, special=True)
        if with_special:
            return True, with_special[0]
        if self.info.bos_text:
            return False, self._single_id(self.info.bos_text)
        return False, -1

    def _server_detokenize(self, tokens: list[int]) -> str:
        client = self._require()
        kind = self.info.kind
        if kind == LLAMA_CPP:
            return str(client.post("/detokenize", {"tokens": tokens}).get("content", ""))
        if kind == VLLM:
            answer = client.post("/detokenize", {"model": self.model_id, "tokens": tokens})
            return str(answer.get("prompt", ""))
        if kind == LLAMA_CPP_PYTHON:
            return str(client.post("/extras/detokenize", {"tokens": tokens}).get("text", ""))
        return ""

    def detokenize(self, tokens: Iterable[int], special: bool = False) -> str:
        """Token ids to text, from what ezchat remembers and else from the server. Server-format
        markers are rendered only with ``special=True``."""
        self._require()
        return self._text_of(list(tokens), special)

    def _text_of(self, tokens: list[int], special: bool = True) -> str:
        memory = self._memory
        out: list[str] = []
        i, n = 0, len(tokens)
        while i < n:
            token = tokens[i]
            if token < 0:
                if is_estimated(token):
                    out.append(self._estimated.text(token))
                elif special and is_marker(token):
                    out.append(MARKER_TEXT[token])
                i += 1
                continue
            match = memory.longest_match(tokens, i)
            if match is not None:
                out.append(match[1])
                i += match[0]
                continue
            j = i + 1
            while j < n and tokens[j] >= 0 and memory.longest_match(tokens, j) is None:
                j += 1
            run = tokens[i:j]
            known = memory.join_pieces(run)
            if known is None:
                try:
                    known = self._server_detokenize(run)
                except SHAPE_ERRORS:
                    raise RemoteError(self._odd_answer()) from None
            out.append(known)
            i = j
        return "".join(out)

    def token_text(self, token: int) -> str:
        """A token's text for display ('' for an id the server does not know)."""
        if token < 0:
            if is_marker(token):
                return MARKER_TEXT[token]
            return self._estimated.text(token) if is_estimated(token) else ""
        text = self._token_texts.get(token)
        if text is None:
            text = self._text_of([token])
            self._token_texts[token] = text
        return text

    def _single_id(self, text: str) -> int:
        """The id of the one token ``text`` is, or -1 if it is none or several."""
        if not text:
            return -1
        known = self._memory.single_ids.get(text)
        if known is not None:
            return known
        tokens = self.tokenize(text, add_bos=False, special=True)
        return tokens[0] if len(tokens) == 1 else -1

    def get_length(self, text: str) -> int:
        """Length of ``text`` in tokens, including the BOS token the model adds."""
        return len(self.tokenize(text, add_bos=True))
