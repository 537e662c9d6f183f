"""One-shot commands on a prompt: ``generate`` streams a completion, ``candidates`` lists the
likeliest next tokens."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ..interrupt import CancelOnSigint
from ..safetext import VisibleStream, json_text
from ..session import ChatOptions, load_sampler, make_thread
from .loadbar import EXIT_INTERRUPTED, load_model_showing_progress
from .options import JsonOption, PromptArgument, chat_options, prepare, read_prompt
from .tables import print_table


def completion_prompt(
    model: Any, options: ChatOptions, text: str, wrap: bool
) -> tuple[str | list[int], list[str | int]]:
    """The raw text, or with ``--format`` the tokens of a chat whose one user turn is ``text``
    (and the format's stop strings)."""
    if not wrap:
        return text, []
    thread = make_thread(model, options)
    thread.add_message("user", text)
    return thread.plan_prompt().tokens, list(thread.format.stops)


@chat_options()
def generate(
    prompt: PromptArgument,
    json_output: JsonOption = False,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", "-n", min=1, help="most tokens to generate"),
    ] = None,
    *,
    options: ChatOptions,
) -> None:
    """Stream a completion of PROMPT to stdout (--format wraps it as a user turn)."""
    text = read_prompt(prompt)
    wrap = options.format is not None  # the flag only; the config's format is for chats
    options = prepare(options)
    sampler = load_sampler(options)
    if max_tokens is not None:
        sampler = sampler.replace(max_len_tokens=max_tokens)
    model = load_model_showing_progress(options)
    tokens, stops = completion_prompt(model, options, text, wrap)
    with CancelOnSigint() as interrupt:
        generation = model.start(tokens, stops, sampler)
        interrupt.watch(generation)
        shown = VisibleStream()  # the completion is the model's text: never obeyed as controls
        for event in generation:
            if event.text and not json_output:
                sys.stdout.write(shown.push(event.text))
                sys.stdout.flush()
    result = generation.result
    if json_output:
        report = result.prompt
        print(
            json_text(
                {
                    "text": result.text,
                    "model": model.filename,
                    "stop_reason": result.stop_reason,
                    "stop_string": result.stop_string,
                    "prompt_tokens": report.prompt_tokens,
                    "prompt_tokens_evaluated": report.evaluated,
                    "prompt_tokens_reused": report.reused,
                    "prompt_seconds": round(report.seconds, 6),
                    "generated_tokens": result.n_generated,
                    "decode_seconds": round(result.decode_seconds, 6),
                    "tokens_per_second": round(result.tokens_per_second, 3),
                },
            )
        )
    else:
        print(shown.finish())
    if interrupt.requested:
        raise typer.Exit(EXIT_INTERRUPTED)


@chat_options(exclude=["sampler"])
def candidates(
    prompt: PromptArgument,
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="how many candidates")] = 10,
    json_output: JsonOption = False,
    *,
    options: ChatOptions,
) -> None:
    """The model's most likely next tokens after PROMPT, with probabilities."""
    text = read_prompt(prompt)
    wrap = options.format is not None
    options = prepare(options)
    model = load_model_showing_progress(options)
    found = model.candidates(completion_prompt(model, options, text, wrap)[0], k)
    if json_output:
        rows = [{"id": c.id, "text": c.text, "probability": c.probability} for c in found]
        print(json_text(rows))
        return
    print_table(
        ["#", "token", "id", "probability"],
        [
            [str(rank), repr(c.text), str(c.id), f"{c.probability:.4f}"]
            for rank, c in enumerate(found, start=1)
        ],
        right={0, 2, 3},
    )
