"""The ``!commands`` about the conversation itself: the reply kinds (reroll, continue),
undo and reset, what the model sees (stats, prompt), a summary, and quitting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..chat.reply import Reply
from ..chat.reply_kind import ReplyKind
from ..chat.thread import Thread
from ..errors import EzChatError, PromptTooLongError
from .output import ROLE_LABELS

if TYPE_CHECKING:
    from .loop import Repl

SUMMARY_REQUEST = "Summarise this conversation in a few sentences:"


def reroll(repl: Repl, arg: str) -> None:
    repl.generate(lambda: repl.thread.start(ReplyKind.REROLL))


def continue_reply(repl: Repl, arg: str) -> None:
    repl.generate(lambda: repl.thread.start(ReplyKind.CONTINUE))


def undo(repl: Repl, arg: str) -> None:
    if not repl.thread.messages:
        raise EzChatError("there is no message to remove")
    removed = repl.thread.messages.pop()
    repl.note(f"(removed the {removed['role']} message: {preview(removed['content'])})")


def reset(repl: Repl, arg: str) -> None:
    repl.thread.reset()
    repl.prefix = ""
    repl.stopped = False
    repl.note(f"(chat cleared; {len(repl.thread.messages)} message(s) kept)")


def stats(repl: Repl, arg: str) -> None:
    repl.thread.print_stats(file=repl.out.file)
    thread = repl.thread
    repl.out.line(f"{thread.format_choice.lines()[0]}; sampler {thread.sampler.name}")
    if thread.format_choice.warning:
        repl.out.line(f"warning: {thread.format_choice.warning}", "error")
    result = thread.last_result
    if result is not None:
        report = result.prompt
        repl.out.line(
            f"last reply: {result.n_generated} tokens at {result.tokens_per_second:.1f} "
            f"tokens/s ({result.stop_reason}); prompt {report.prompt_tokens} tokens, "
            f"{report.evaluated} evaluated, {report.reused} reused"
        )


def show_prompt(repl: Repl, arg: str) -> None:
    repl.out.line(repl.thread.inference_str_from_messages())


def summarise(repl: Repl, arg: str) -> None:
    said = [m for m in repl.thread.messages if m["role"] != "system"]
    if not said:
        raise EzChatError("there is nothing to summarise yet; send a message first")
    repl.note("(summary; the chat is unchanged)")
    repl.generate(lambda: _start_summary(repl.thread, said), main=False)


def _start_summary(thread: Thread, said: list[dict]) -> Reply:
    """A reply in a side Thread; the oldest messages are left out until the request fits."""
    for first in range(len(said)):
        transcript = "\n".join(f"{ROLE_LABELS[m['role']]}: {m['content']}" for m in said[first:])
        side = Thread(thread.model, thread.format, thread.sampler, messages=[])
        side.add_message("user", f"{SUMMARY_REQUEST}\n\n{transcript}")
        try:
            return side.start_reply()
        except PromptTooLongError:
            if first == len(said) - 1:
                raise
    raise AssertionError("unreachable")


def quit(repl: Repl, arg: str) -> None:
    repl.running = False


def preview(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
