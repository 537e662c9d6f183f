"""A reply from a server keeps how the server weighed each token, from
llama-server's ``n_probs`` and llama-cpp-python's ``logprobs``, as a local reply does."""

from __future__ import annotations

from pathlib import Path

import ezchat as ez
from ezchat.engine.weighing import TOKEN_INFO_K


def _check_weighed(result, local_first) -> None:
    infos = result.token_info
    assert infos is not None and len(infos) == len(result.tokens)
    known = [info for info in infos if info is not None]
    assert len(known) >= len(infos) - 1  # at most a token the server spelled oddly
    for token, info in zip(result.tokens, infos, strict=True):
        if info is None:
            continue
        assert info.id == token and len(info.top) == TOKEN_INFO_K
        assert info.top[0][0] == token  # greedy
        assert abs(info.top[0][1] - info.probability) < 1e-4
    # the first token as the local model weighs it, on the same prompt
    first = infos[0]
    assert first is not None
    assert [t for t, _ in first.top[:5]] == [t for t, _ in local_first.top[:5]]
    for (_, theirs), (_, ours) in zip(first.top[:5], local_first.top[:5], strict=True):
        assert abs(theirs - ours) < 1e-3


def test_llama_server_replies_keep_their_weighing(
    llama_remote: ez.RemoteModel, model_path: Path, chat_prompt: str, greedy
) -> None:
    result = llama_remote.start(chat_prompt, sampler=greedy, token_info=True).run()
    # flash attention on, as llama-server's -fa auto picks it on this CPU
    with ez.Model(model_path, context_length=2048, seed=1234, flash_attn=True) as fresh:
        local = fresh.start(chat_prompt, sampler=greedy, token_info=True).run()
    _check_weighed(result, local.token_info[0])
    plain = llama_remote.start(chat_prompt, sampler=greedy).run()
    assert plain.token_info is None and plain.tokens == result.tokens


def test_llama_cpp_python_server_replies_keep_their_weighing(
    remote: ez.RemoteModel, model: ez.Model, chat_prompt: str, greedy
) -> None:
    """Its server names the alternatives by text only: their ids are asked for once the
    stream is over."""
    result = remote.start(chat_prompt, sampler=greedy, token_info=True).run()
    local = model.start(chat_prompt, sampler=greedy, token_info=True).run()
    _check_weighed(result, local.token_info[0])
