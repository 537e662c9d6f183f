"""The one path every runner takes from prompts to responses.

``prepare`` turns a Prompt into prompt tokens (through the chat format, or as-is for raw
prompts) or a reason to skip it; ``execute`` answers from the response cache where it can, runs
the rest (several at once in one batch, or one after another on the Model), parses typed
output (closing a cut-off reply), and builds the ``Response`` objects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import gates
from ..chat.thread import Thread
from ..engine.batched import Request, run_batched
from ..engine.model import Model
from ..engine.results import GenerationResult
from ..errors import PromptTooLongError
from .cache import ResponseCache, cache_key
from .responses import Response, Responses
from .typed import OutputType, TypedOutputError

if TYPE_CHECKING:
    from ..chat.formats import Format
    from ..chat.samplers import SamplerSettings
    from .prompts import Prompt

# Runners stop a reply here when the sampler sets no limit: a batch reserves KV cache for every
# reply it runs at once, so "until the context is full" would reserve the whole context for each.
DEFAULT_MAX_TOKENS = 512

_request_ids = itertools.count()


def runner_sampler(sampler: SamplerSettings | None) -> SamplerSettings:
    """The sampler runners use: the given one (default preset otherwise) with a reply limit."""
    if sampler is None:
        from ..chat import samplers

        sampler = samplers.load_default()
    if sampler.max_len_tokens < 1:
        sampler = sampler.replace(max_len_tokens=DEFAULT_MAX_TOKENS)
    return sampler


@dataclass(slots=True)
class Job:
    prompt: Prompt
    request: Request | None
    skipped: str | None = None


def prepare(
    model: Model,
    format: Format | None,
    prompt: Prompt,
    sampler: SamplerSettings,
    output_type: OutputType | None = None,
    history: Sequence[tuple[str, str]] = (),
) -> Job:
    """Tokens for ``prompt``: raw prompts (or ``format=None``) as written, others as a chat
    of ``history`` (role, text) pairs, the system prompt and the rendered user message."""
    stops: list[str | int] = []
    try:
        if prompt.raw or format is None:
            tokens = model.tokenize(prompt.reformated)
            if len(tokens) + 1 > model.context_length:
                raise PromptTooLongError(
                    f"the prompt is {len(tokens)} tokens but the context holds "
                    f"{model.context_length}; shorten it or load a larger context_length"
                )
        else:
            messages = (
                [{"role": "system", "content": prompt.sys_prompt}] if prompt.sys_prompt else []
            )
            messages += [{"role": role, "content": text} for role, text in history]
            messages.append({"role": "user", "content": prompt.reformated})
            # The Thread tokenizes user text with special tokens off, and raises
            # PromptTooLongError when even the last message cannot fit.
            tokens = Thread(model, format, sampler, messages=messages).plan_prompt().tokens
            stops = list(format.stops)
    except PromptTooLongError as exc:
        return Job(prompt, None, str(exc))
    if not tokens:
        return Job(prompt, None, "the prompt is empty; give the model some text")
    if output_type is None:
        return Job(prompt, Request(tokens, sampler, stops))
    # A typed reply's length follows from its type, not from a limit meant for free text.
    budget = output_type.token_budget(sampler.max_len_tokens)
    typed_sampler = sampler.replace(max_len_tokens=budget)
    return Job(prompt, Request(tokens, typed_sampler, stops, output_type.grammar))


def _response(
    job: Job, result: GenerationResult, cached: bool, output_type: OutputType | None
) -> Response:
    response = Response(
        prompt=job.prompt,
        text=result.text,
        prompt_tokens=result.prompt.prompt_tokens,
        completion_tokens=result.n_generated,
        seconds=0.0 if cached else result.prompt.seconds + result.decode_seconds,
        stop_reason=result.stop_reason,
        cached=cached,
        request_id=next(_request_ids),
    )
    if output_type is not None:
        try:
            typed = output_type.read(result.text, result.stop_reason)
        except TypedOutputError as exc:
            response.error = str(exc)
        else:
            response.value, response.cut_off = typed.value, typed.cut_off
    return response


@dataclass(slots=True)
class RunStats:
    """What one ``execute`` call evaluated: cache hits cost nothing."""

    prompts: int = 0
    cached: int = 0
    skipped: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0


def execute(
    model: Model,
    jobs: Sequence[Job],
    *,
    format_name: str,
    parallel: int = 16,
    cache: ResponseCache | None = None,
    output_type: OutputType | None = None,
    on_response: Callable[[Response], None] | None = None,
    on_tokens: Callable[[int, int], None] | None = None,
    stats: RunStats | None = None,
) -> Responses:
    """Answer every job, in order. ``on_response`` sees each response as soon as it exists
    (cache hits and skips first, then runs as they finish); ``on_tokens(prompt, new)`` gets
    the tokens each batch evaluated. ``parallel=1`` runs the prompts one after another on the
    Model (sharing its prompt cache); more runs them together in one batch."""
    stats = stats if stats is not None else RunStats()
    stats.prompts += len(jobs)
    responses: list[Response | None] = [None] * len(jobs)
    keys: dict[int, str] = {}

    gate = gates.installed()
    finished = 0

    def finish(index: int, response: Response) -> None:
        nonlocal finished
        responses[index] = response
        if on_response is not None:
            on_response(response)
        finished += 1
        if gate is not None:
            gate("response", finished, "")

    to_run: list[int] = []
    for index, job in enumerate(jobs):
        if job.request is None:
            stats.skipped += 1
            finish(index, Response(job.prompt, skipped=job.skipped, request_id=next(_request_ids)))
            continue
        if cache is not None:
            keys[index] = cache_key(model, format_name, job.request)
            hit = cache.get(keys[index])
            if hit is not None:
                stats.cached += 1
                finish(index, _response(job, hit, True, output_type))
                continue
        to_run.append(index)

    def done(position: int, result: GenerationResult) -> None:
        index = to_run[position]
        stats.evaluated_tokens += result.prompt.evaluated
        stats.generated_tokens += result.n_generated
        if cache is not None and result.stop_reason != "cancelled":
            cache.put(keys[index], model, format_name, result)
        finish(index, _response(jobs[index], result, False, output_type))

    requests = [jobs[index].request for index in to_run]
    local = model.runs_in_process  # batches need llama.cpp in this process
    if local and (parallel > 1 or output_type is not None):
        # The grammar sampler lives in the batched path, so typed runs always take it.
        run_batched(model, requests, parallel, on_result=done, on_step=on_tokens)
    else:
        # A server runs one request at a time here; a grammar travels with the request
        # (servers that take none say so in one line: backends/capabilities.py).
        for position, request in enumerate(requests):
            assert request is not None
            if request.grammar is None:
                result = model.complete(request.tokens, request.stops, request.sampler)
            else:
                result = model.start(
                    request.tokens, request.stops, request.sampler, grammar=request.grammar
                ).run()
            if on_tokens is not None:
                on_tokens(result.prompt.evaluated, result.n_generated)
            done(position, result)
    return Responses(response for response in responses if response is not None)
