"""Every generated token keeps how the model weighed it: its full-softmax
probability and the top 10, computed once per token from the logits it was sampled from."""

from __future__ import annotations

import numpy as np
import pytest

import ezchat as ez
from ezchat.engine.weighing import GROUP_ROWS, TOKEN_INFO_K, TokenWeigher


def reference_softmax(logits: np.ndarray) -> np.ndarray:
    wide = logits.astype(np.float64)
    exp = np.exp(wide - wide.max())
    return exp / exp.sum()


@pytest.mark.parametrize("n_vocab", [49152, 49152 + GROUP_ROWS // 2 + 3, 300, 7])
@pytest.mark.parametrize("scale", [1.0, 8.0, 40.0])
def test_weigher_matches_the_full_softmax(n_vocab: int, scale: float) -> None:
    """The grouped top-k finds exactly the top 10 of a plain sort, with the same probabilities,
    for vocabularies that fill the groups, leave a tail, or are smaller than k groups, and for
    logits large enough to need the max subtracted."""
    rng = np.random.default_rng(n_vocab)
    logits = (rng.standard_normal(n_vocab) * scale).astype(np.float32)
    weigher = TokenWeigher(n_vocab)
    weighing = weigher.weigh(logits)
    probs = reference_softmax(logits)
    k = min(TOKEN_INFO_K, n_vocab)
    expected = np.argsort(-probs, kind="stable")[:k]
    assert weighing.top_ids.tolist() == expected.tolist()
    np.testing.assert_allclose(weighing.top_probs, probs[expected], rtol=1e-5, atol=1e-9)
    token = int(rng.integers(n_vocab))
    assert weighing.probability(token) == pytest.approx(probs[token], rel=1e-5, abs=1e-12)


def test_equal_logits_rank_the_lower_id_first() -> None:
    """As argmax does: the greedy token is then the first of the top."""
    logits = np.zeros(4096, dtype=np.float32)
    logits[[3000, 17, 2500]] = 5.0
    weighing = TokenWeigher(4096).weigh(logits)
    assert weighing.top_ids[:3].tolist() == [17, 2500, 3000]
    assert int(np.argmax(logits)) == weighing.top_ids[0]


def test_every_token_keeps_its_weighing(model: ez.Model, greedy, chat_prompt: str) -> None:
    plain = model.start(chat_prompt, sampler=greedy).run()
    generation = model.start(chat_prompt, sampler=greedy, token_info=True)
    result = generation.run()
    assert plain.token_info is None  # not asked for, not paid for
    assert result.tokens == plain.tokens and result.text == plain.text
    infos = result.token_info
    assert infos is not None and len(infos) == len(result.tokens) > 3
    for token, info in zip(result.tokens, infos, strict=True):
        assert info.id == token
        assert len(info.top) == TOKEN_INFO_K
        assert info.top[0][0] == token  # greedy picks the most likely token
        assert info.top[0][1] == pytest.approx(info.probability, rel=1e-6)
        probabilities = [p for _, p in info.top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-5
    # the first token's weighing is the candidates at the end of the prompt
    candidates = model.candidates(chat_prompt, TOKEN_INFO_K)
    assert [c.id for c in candidates] == [token for token, _ in infos[0].top]
    for candidate, (_, probability) in zip(candidates, infos[0].top, strict=True):
        assert candidate.probability == pytest.approx(probability, rel=1e-4, abs=1e-7)


def test_candidates_reuse_the_weighing(model: ez.Model, greedy, chat_prompt: str) -> None:
    """With token info on, the candidates an event carries are the same softmax's top."""
    generation = model.start(chat_prompt, sampler=greedy, candidates=5, token_info=True)
    events = [event for event in generation if event.id >= 0]
    infos = generation.result.token_info
    assert infos is not None and len(events) == len(infos)
    for event, info in zip(events, infos, strict=True):
        assert event.candidates is not None
        assert [(c.id, float(c.probability)) for c in event.candidates] == list(info.top[:5])


def test_sampled_tokens_keep_their_own_probability(model: ez.Model, chat_prompt: str) -> None:
    """Sampling at a high temperature picks tokens outside the top; each keeps its own
    full-softmax probability, and a token in the top has the probability listed there."""
    sampler = ez.SamplerSettings(temp=1.5, top_k=0, top_p=1.0, min_p=0.0, max_len_tokens=40)
    result = model.start(chat_prompt, sampler=sampler, token_info=True).run()
    infos = result.token_info
    assert infos is not None and [info.id for info in infos] == result.tokens
    for info in infos:
        assert 0 < info.probability <= 1
        listed = dict(info.top)
        if info.id in listed:
            assert listed[info.id] == pytest.approx(info.probability, rel=1e-6)
        else:
            assert info.probability <= info.top[-1][1] + 1e-7
