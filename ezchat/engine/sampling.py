"""The engine's half of sampling: llama.cpp's sampler chain built from ``SamplerSettings``
(which are plain data in ``ezchat.chat.samplers``), and the JSON-schema grammar typed output samples
with. This is the only sampling code that touches llama_cpp, so loading sampler presets, a
Thread or a RemoteModel never loads the native library.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import llama_cpp
from llama_cpp.llama_grammar import json_schema_to_gbnf

from ..chat.samplers import recent_window

if TYPE_CHECKING:
    from ..chat.samplers import SamplerSettings


class SamplerChain:
    """A llama.cpp sampler chain; ``sample`` picks (and accepts) the next token."""

    def __init__(
        self, chain: llama_cpp.llama_sampler_p, needs_history: bool, pure_greedy: bool = False
    ) -> None:
        self._chain = chain
        self.needs_history = needs_history
        # Plain argmax with nothing before it: the caller may take the argmax of the logits
        # itself, which skips copying the whole vocabulary into llama.cpp's candidate array.
        self.pure_greedy = pure_greedy
        self._sample = llama_cpp.llama_sampler_sample

    def sample(self, ctx: llama_cpp.llama_context_p, idx: int = -1) -> int:
        return self._sample(self._chain, ctx, idx)

    def accept(self, token: int) -> None:
        llama_cpp.llama_sampler_accept(self._chain, token)

    def reset(self) -> None:
        llama_cpp.llama_sampler_reset(self._chain)

    def hand_over(self) -> llama_cpp.llama_sampler_p:
        """The llama.cpp chain, for adding to another chain (which then frees it); this object
        lets go of it."""
        chain, self._chain = self._chain, None
        return chain

    def free(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None

    def __del__(self) -> None:
        self.free()


def build_chain(
    settings: SamplerSettings, model_ptr: Any, vocab_ptr: Any, n_vocab: int, n_ctx: int
) -> SamplerChain:
    """The chain in llama.cpp's common order, leaving out samplers whose setting is neutral."""
    s = settings
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = llama_cpp.llama_sampler_chain_add
    seed = s.seed if s.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED
    penalties = s.repeat_penalty != 1.0 or s.frequency_penalty != 0.0 or s.presence_penalty != 0.0
    dry = s.dry_multiplier > 0.0
    if s.is_greedy and not (penalties or dry):
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return SamplerChain(chain, needs_history=False, pure_greedy=True)
    if penalties:
        last_n = recent_window(s.penalty_last_n, n_ctx)
        add(
            chain,
            llama_cpp.llama_sampler_init_penalties(
                n_vocab, last_n, s.repeat_penalty, s.frequency_penalty, s.presence_penalty
            ),
        )
    if dry:
        breakers = [b.encode() for b in s.dry_sequence_breakers]
        array = (ctypes.c_char_p * len(breakers))(*breakers)
        last_n = recent_window(s.dry_penalty_last_n, n_ctx)
        add(
            chain,
            llama_cpp.llama_sampler_init_dry(
                vocab_ptr,
                s.dry_multiplier,
                s.dry_base,
                s.dry_allowed_length,
                last_n,
                array,
                len(breakers),
            ),
        )
    if s.is_greedy:
        add(chain, llama_cpp.llama_sampler_init_greedy())
    elif s.mirostat_mode == 1:
        add(chain, llama_cpp.llama_sampler_init_temp(s.temp))
        add(
            chain,
            llama_cpp.llama_sampler_init_mirostat(
                n_vocab, seed, s.mirostat_tau, s.mirostat_eta, 100
            ),
        )
    elif s.mirostat_mode == 2:
        add(chain, llama_cpp.llama_sampler_init_temp(s.temp))
        add(chain, llama_cpp.llama_sampler_init_mirostat_v2(seed, s.mirostat_tau, s.mirostat_eta))
    else:
        if s.top_n_sigma >= 0:
            add(chain, llama_cpp.llama_sampler_init_top_n_sigma(s.top_n_sigma))
        if s.top_k > 0:
            add(chain, llama_cpp.llama_sampler_init_top_k(s.top_k))
        if s.typical_p < 1.0:
            add(chain, llama_cpp.llama_sampler_init_typical(s.typical_p, 1))
        if s.top_p < 1.0:
            add(chain, llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0.0:
            add(chain, llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
        if s.xtc_probability > 0.0:
            add(
                chain, llama_cpp.llama_sampler_init_xtc(s.xtc_probability, s.xtc_threshold, 1, seed)
            )
        add(
            chain,
            llama_cpp.llama_sampler_init_temp_ext(s.temp, s.dynatemp_range, s.dynatemp_exponent),
        )
        add(chain, llama_cpp.llama_sampler_init_dist(seed))
    return SamplerChain(chain, needs_history=penalties or dry)


def json_schema_grammar(schema_json: str, prop_order: list[str] | None = None) -> str:
    """A GBNF grammar (root rule ``root``) that only JSON matching ``schema_json`` satisfies,
    from llama-cpp-python's converter."""
    return json_schema_to_gbnf(schema_json, prop_order)
