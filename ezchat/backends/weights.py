"""How a server weighed the tokens of a streamed reply, as ``TokenInfo`` (ezchat.chat.tree):
llama-server (``n_probs``) and llama-cpp-python's server (``logprobs``) send each generated
token's log-probability and its top alternatives, the softmax over the whole vocabulary.

A token's weighing is kept only where it is known exactly: the streamed ids must be the reply's
tokens (else positions would not line up), and every alternative needs its id (a server that
names only the text, llama-cpp-python's, is covered by the ids the stream already resolved).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..chat.tree import TokenInfo
from ..errors import EzChatError
from .servers import TokenInfo as StreamedToken


def token_info_from_stream(
    streamed: Sequence[StreamedToken],
    tokens: Sequence[int],
    text: str,
    id_of: Callable[[str], int | None],
) -> list[TokenInfo | None] | None:
    """One entry per token of ``tokens`` (None where the server's weighing is incomplete), or
    None when the stream's tokens are not the reply's. A stream without ids (llama-cpp-python)
    lines up when it has one entry per token and its pieces spell the reply's text."""
    streamed = list(streamed[: len(tokens)])
    if len(streamed) != len(tokens):
        return None
    if all(s.id is None for s in streamed):
        if "".join(s.text for s in streamed) != text:
            return None
    elif any(s.id != t for s, t in zip(streamed, tokens, strict=True)):
        return None
    infos = [_weighing(token, own, id_of) for token, own in zip(streamed, tokens, strict=True)]
    return infos if any(info is not None for info in infos) else None


def _weighing(
    token: StreamedToken, own_id: int, id_of: Callable[[str], int | None]
) -> TokenInfo | None:
    if token.probability is None or not token.candidates:
        return None
    top = []
    for candidate_id, text, probability in token.candidates:
        if candidate_id is None:
            candidate_id = id_of(text)
        if candidate_id is None or candidate_id < 0:
            return None
        top.append((int(candidate_id), float(probability)))
    return TokenInfo(int(own_id), float(token.probability), tuple(top))


def ids_by_text(single_id: Callable[[str], int]) -> Callable[[str], int | None]:
    """``single_id`` (which may ask the server) once per distinct text; a server that has gone
    leaves the id unknown."""
    seen: dict[str, int | None] = {}

    def id_of(text: str) -> int | None:
        if text not in seen:
            try:
                seen[text] = single_id(text)
            except EzChatError:
                seen[text] = None
        return seen[text]

    return id_of
