"""ez.Model against the real default model (SmolLM2-135M-Instruct), greedy and seeded."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

import ezchat as ez
from ezchat.engine.model import ModelUnloadedException, kv_cache_type_name


def test_facts(model: ez.Model, model_path) -> None:
    assert model.filename == str(model_path)
    assert model.n_ctx == model.context_length == 2048
    assert model.n_ctx_train == 8192
    assert model.n_vocab == 49152 == len(model.vocab)
    assert model.n_layer == 30
    assert model.n_gqa == 3
    assert model.ctx_scale == pytest.approx(2048 / 8192)
    assert model.rope_freq_base == model.rope_freq_base_train == 100000.0
    assert model.vocab[model.eos_token] == "<|im_end|>"
    assert model.flash_attn is False and model.n_gpu_layers == 0
    assert model.type_k == model.type_v == 1
    assert model.metadata["general.architecture"] == "llama"
    assert model.llama.n_ctx() == 2048
    for name in (
        "eot_token",
        "nl_token",
        "prefix_token",
        "middle_token",
        "suffix_token",
        "cls_token",
        "sep_token",
    ):
        value = getattr(model, name)
        assert value is None or isinstance(value, int)


def test_default_context_is_native_capped(model_path) -> None:
    with ez.Model(model_path) as native:
        assert native.context_length == 8192


@pytest.mark.slow
def test_generate_is_deterministic(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    first = model.generate(chat_prompt, sampler=greedy)
    second = model.generate(chat_prompt, sampler=greedy)
    assert first == second
    assert "Paris" in first


def test_stream_text_equals_generate(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    chunks = list(model.stream(chat_prompt, sampler=greedy))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    streamed = "".join(chunk["choices"][0]["text"] for chunk in chunks)
    assert streamed == model.generate(chat_prompt, sampler=greedy)


def test_stream_print_writes_and_returns(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    out = io.StringIO()
    text = model.stream_print(chat_prompt, sampler=greedy, end="<END>", file=out)
    assert out.getvalue() == text + "<END>"


def test_token_id_stop_ends_at_that_token(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    full = model.complete(chat_prompt, sampler=greedy)
    stop_token = full.tokens[3]
    cut = model.complete(chat_prompt, stops=[stop_token], sampler=greedy)
    assert cut.tokens == full.tokens[:3]
    assert cut.stop_reason == "stop_token"
    assert cut.text == model.detokenize(full.tokens[:3])


def test_string_stop_is_never_shown(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    full = model.generate(chat_prompt, sampler=greedy)
    assert "Paris" in full
    chunks = [
        c["choices"][0]["text"] for c in model.stream(chat_prompt, stops=["Paris"], sampler=greedy)
    ]
    text = "".join(chunks)
    assert text == full[: full.index("Paris")]
    assert not any("P" in chunk for chunk in chunks)


def test_max_len_tokens(model: ez.Model, greedy: ez.SamplerSettings) -> None:
    greedy.max_len_tokens = 5
    result = model.complete("Once upon a time", sampler=greedy)
    assert result.n_generated == 5 and result.stop_reason == "length"


def test_candidates_full_softmax(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    candidates = model.candidates(chat_prompt, 10)
    assert len(candidates) == 10
    probs = [float(p) for _, p in candidates]
    assert probs == sorted(probs, reverse=True)
    assert all(0 < p <= 1 for p in probs)
    assert sum(probs) <= 1.0 + 1e-6
    greedy.max_len_tokens = 1
    first = model.complete(chat_prompt, sampler=greedy)
    assert candidates[0][0] == model.token_text(first.tokens[0])
    # the np.floating easy-llama documents, and a float that JSON takes as it is
    assert isinstance(candidates[0][1], np.floating) and isinstance(candidates[0][1], float)
    assert json.loads(json.dumps(candidates[0])) == [candidates[0][0], candidates[0][1]]


def test_candidates_keep_the_prompt_cache(model: ez.Model, chat_prompt: str) -> None:
    model.candidates(chat_prompt, 3)
    cached = model.cached_tokens
    model.candidates(chat_prompt + "The", 3)
    assert model.last_eval.reused == len(cached)
    assert model.last_eval.evaluated == len(model.tokenize(chat_prompt + "The")) - len(cached)


def test_candidates_on_every_token_or_only_on_request(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    greedy.max_len_tokens = 6
    every = list(model.start(chat_prompt, sampler=greedy, candidates=4))
    assert len(every) == 6 and all(len(event.candidates) == 4 for event in every)

    generation = model.start(chat_prompt, sampler=greedy, candidates=4)
    assert generation.candidates_only_on_request()
    sparse = []
    for position, event in enumerate(generation):
        sparse.append(event)
        if position == 3:
            generation.request_candidates()
    # the first token always carries them, then only the token after the request
    assert [e.candidates is not None for e in sparse] == [True, False, False, False, True, False]
    assert [e.id for e in sparse] == [e.id for e in every]  # the same reply either way
    for position in (0, 4):
        assert sparse[position].candidates == every[position].candidates


def test_print_candidates(model: ez.Model, chat_prompt: str) -> None:
    out = io.StringIO()
    model.print_candidates(chat_prompt, 3, file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("token ") and "has probability" in lines[0]


def test_utf8_split_across_tokens_streams_whole(
    model: ez.Model, greedy: ez.SamplerSettings
) -> None:
    greedy.max_len_tokens = 40
    prompt = "🦙🐪🦙🐪🦙🐪🦙🐪🦙🐪🦙🐪🦙🐪"
    generation = model.start(prompt, sampler=greedy)
    texts = [event.text for event in generation]
    pieces = [model.token_bytes(t) for t in generation.result.tokens]
    split = [p for p in pieces if p and not _is_valid_utf8(p)]
    assert split, "the test needs a reply whose characters span several tokens"
    assert all("\ufffd" not in text for text in texts)
    # a character cut off by max_len_tokens is dropped, not shown as a replacement character
    assert "".join(texts) == b"".join(pieces).decode("utf-8", errors="ignore")


def _is_valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_special_token_text_is_plain_text_when_special_off(model: ez.Model) -> None:
    as_special = model.tokenize("<|im_end|>", add_bos=False, special=True)
    as_text = model.tokenize("<|im_end|>", add_bos=False, special=False)
    assert as_special == [model.eos_token]
    assert model.eos_token not in as_text and len(as_text) > 1


def test_text_that_is_not_utf8_is_a_one_line_error(model: ez.Model) -> None:
    """What Python makes of a byte that is not UTF-8 (U+DCFF) could not be encoded again."""
    with pytest.raises(ez.InvalidTextError) as caught:
        model.tokenize("bad \udcff")
    assert str(caught.value) == (
        "the text to tokenize: byte offset 4 is 0xff, which is not UTF-8 text; convert it to "
        "UTF-8, e.g. with iconv -f latin1 -t utf-8"
    )


def test_get_length_counts_bos(model: ez.Model) -> None:
    text = "The sky is blue."
    assert model.get_length(text) == len(model.tokenize(text, add_bos=True))


@pytest.mark.slow
def test_ingest_then_generate_reuses_cache(
    model: ez.Model, greedy: ez.SamplerSettings, chat_prompt: str
) -> None:
    model.ingest(chat_prompt)
    model.generate(chat_prompt, sampler=greedy)
    assert model.last_eval.evaluated == 1  # only the last token, for fresh logits


def test_cancel_keeps_partial(model: ez.Model, greedy: ez.SamplerSettings) -> None:
    greedy.max_len_tokens = 100
    prompt = "<|im_start|>user\nWrite a long poem about the sea.<|im_end|>\n<|im_start|>assistant\n"
    generation = model.start(prompt, sampler=greedy)
    seen = []
    for event in generation:
        seen.append(event.id)
        if len(seen) == 4:
            generation.cancel()
    assert generation.result.stop_reason == "cancelled"
    assert generation.result.tokens == seen


def test_prompt_too_long(model: ez.Model) -> None:
    with pytest.raises(ez.PromptTooLongError, match="context holds 2048"):
        model.generate("word " * 3000)


def test_rope_scaling_beyond_native(model_path) -> None:
    with pytest.warns(UserWarning, match="RoPE base raised"):
        scaled = ez.Model(model_path, context_length=16384)
    try:
        assert scaled.ctx_scale == 2.0
        assert scaled.rope_freq_base > scaled.rope_freq_base_train
        assert scaled.llama.context_params.rope_freq_base == pytest.approx(scaled.rope_freq_base)
    finally:
        scaled.unload()


def test_unload_then_use_raises(model_path) -> None:
    loaded = ez.Model(model_path, context_length=256)
    loaded.unload()
    loaded.unload()  # a second unload does nothing
    with pytest.raises(ModelUnloadedException, match="unloaded"):
        loaded.generate("The girl walked down")
    with pytest.raises(ModelUnloadedException):
        loaded.tokenize("hi")
    with pytest.raises(ModelUnloadedException):
        _ = loaded.llama


def test_kv_cache_types(model_path) -> None:
    with ez.Model(model_path, context_length=256, type_k="q8_0", type_v="f16") as quantised:
        assert quantised.type_k == 8
        assert kv_cache_type_name(quantised.type_k) == "q8_0"
        assert kv_cache_type_name(quantised.type_v) == "f16"
        assert quantised.generate(
            "Hello", sampler=ez.samplers.GreedyDecoding.replace(max_len_tokens=4)
        )


@pytest.mark.parametrize(("n_ctx", "cache"), [(2048, "f16"), (4096, "q8_0")])
def test_kv_cache_estimate_is_what_llama_cpp_allocates(model_path, capfd, n_ctx, cache) -> None:
    loaded = ez.Model(model_path, n_ctx, flash_attn=True, type_k=cache, type_v=cache, verbose=True)
    loaded.unload()
    log = capfd.readouterr().err
    allocated = re.search(r"llama_kv_cache: size = +([0-9.]+) MiB", log)
    assert allocated, log[-2000:]
    assert loaded.kv_cache.total / 2**20 == pytest.approx(float(allocated.group(1)), abs=0.01)


def test_a_context_too_large_to_allocate_says_so_before_loading(model_path) -> None:
    """The refusal names the context and the memory its KV cache needs, not the file."""
    from ezchat.engine.memory import human_bytes

    n_ctx = 99999999999999
    weights_read: list[float] = []  # llama.cpp reports each part of the weights it reads
    with pytest.raises(ez.ModelLoadError) as caught:
        ez.Model(model_path, context_length=n_ctx, progress=weights_read.append)
    assert weights_read == []  # refused before llama.cpp read any of the weights
    message = str(caught.value)
    assert message.startswith(
        f"{model_path}: a context of 99,999,999,999,999 tokens is too large: its KV cache "
        f"would need about {human_bytes(23040 * n_ctx)} (30 layers x 3 KV heads x 64 dims, "
        "f16/f16), more than this machine's "
    )
    assert "choose a smaller context length (about " in message and "damaged" not in message
    with pytest.raises(ez.ModelLoadError, match=r"a context of 2,147,483,648 tokens is too large"):
        ez.Model(model_path, context_length=2**31)


def test_a_context_llama_cpp_refuses_is_not_blamed_on_the_file(model_path) -> None:
    with pytest.raises(ez.ModelLoadError) as caught:
        ez.Model(model_path, context_length=512, type_v="q8_0", flash_attn=False)
    assert str(caught.value) == (
        f"{model_path}: llama.cpp quantises the V cache (q8_0) only with flash attention; turn "
        "flash attention on, or use an f16 V cache"
    )


@pytest.mark.slow
def test_saved_state_round_trip(
    model: ez.Model, greedy: ez.SamplerSettings, model_path, chat_prompt: str
) -> None:
    model.ingest(chat_prompt)
    tokens, state = model.save_state()
    expected = model.generate(chat_prompt, sampler=greedy)
    with ez.Model(model_path, context_length=2048) as other:
        assert other.load_state(tokens, state)
        assert other.generate(chat_prompt, sampler=greedy) == expected
        assert other.last_eval.evaluated == 1


@pytest.mark.slow
def test_load_progress_rises_to_one(model_path, greedy, chat_prompt) -> None:
    seen: list[float] = []
    loaded = ez.Model(model_path, context_length=256, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen) and len(seen) > 10  # one report per tensor or so
    assert "Paris" in loaded.generate(chat_prompt, sampler=greedy)


def test_load_cancelled_by_its_progress_report(model_path) -> None:
    with pytest.raises(ez.LoadCancelled, match="loading was cancelled"):
        ez.Model(model_path, context_length=256, progress=lambda fraction: fraction < 0.5)

    # an exception in the report (Ctrl-C reaches Python there) stops the load and comes out
    def interrupt(fraction: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ez.Model(model_path, context_length=256, progress=interrupt)
    # nothing is left patched: a load without a report, on this or another thread, is plain
    assert ez.Model(model_path, context_length=256).tokenize("Hi")


def test_only_the_loading_thread_hears_progress(model_path) -> None:
    import threading

    seen: list[float] = []
    other_thread_loaded = threading.Event()

    def load_elsewhere_during_this_load(fraction: float) -> None:
        seen.append(fraction)
        if len(seen) == 1:  # llama.cpp is mid-load on this thread, the factory is wrapped
            worker = threading.Thread(target=lambda: ez.Model(model_path, context_length=256))
            worker.start()
            worker.join()
            other_thread_loaded.set()

    ez.Model(model_path, context_length=256, progress=load_elsewhere_during_this_load)
    assert other_thread_loaded.is_set()
    assert seen[-1] == 1.0 and seen.count(0.0) == 1  # the other load reported nothing here
