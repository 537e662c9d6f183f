"""The chat screen's token inspection: the candidates pane shows what else the model could have
written at any token of a reply, and picking one (or typing text) branches that reply there:
a new sibling, the old reply and everything after it kept on their branch.

A reply's tokens keep how the model weighed them (``Node.token_info``, saved with the chat), so
the candidates of any token of any reply are read from there, also after the chat is reopened,
with no evaluation. Only where they are unknown (a reply written before ezchat kept them, or
typed text) are they computed: that evaluates the prompt up to that token, so it runs in a
worker under the app's model lock; only the newest request counts (``exclusive``), and a stale
answer is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.worker import get_current_worker

from ..chat.reply_kind import ReplyKind
from ..engine.results import Candidate
from ..errors import EzChatError
from .candidates import CandidatesPane, visible_token
from .dialogs import TextEditScreen
from .events import CandidatesReady
from .reply_flow import CANDIDATES_K

if TYPE_CHECKING:
    from .chat_screen import ChatScreen


class TokenInspection:
    """Mixed into ChatScreen."""

    # (message index, token position) the candidates pane inspects, when it does
    _inspecting: tuple[int, int] | None = None

    def action_inspect_tokens(self: ChatScreen, index: int | None = None) -> None:
        """Show the candidates at the last token of a reply (the last one by default)."""
        if not self._can("inspect tokens"):
            return
        messages = self.thread.messages
        if index is None:
            bots = [i for i, m in enumerate(messages) if m["role"] == "bot"]
            if not bots:
                self.notify("There is no bot reply to inspect yet.")
                return
            index = bots[-1]
        if not self._inspect_reply_end(index):
            self.notify("This reply is empty; there are no tokens to inspect.")
            return
        self.candidates_pane.query_one("OptionList").focus()

    def _inspect_reply_end(self: ChatScreen, index: int) -> bool:
        """Show the candidates at the last token of reply ``index``; False when it is empty."""
        tokens = self.thread.reply_tokens(self.thread.messages[index])
        if tokens:
            self._inspect(index, len(tokens) - 1)
        return bool(tokens)

    def _inspect(self: ChatScreen, index: int, position: int) -> None:
        self._inspecting = (index, position)
        stored = stored_candidates(self.thread, index, position, CANDIDATES_K)
        if stored is not None:
            self.post_message(CandidatesReady(index, position, *stored))
            return
        self._candidates_at(index, position)

    @work(thread=True, group="candidates", exclusive=True, exit_on_error=False)
    def _candidates_at(self: ChatScreen, index: int, position: int) -> None:
        thread = self.thread
        with self.app.model_lock:
            if get_current_worker().is_cancelled:
                return
            try:
                candidates = thread.candidates_at(index, position, CANDIDATES_K)
                chosen = thread.reply_tokens(thread.messages[index])[position]
            except EzChatError as error:
                self.app.call_from_thread(self.report, error)
                return
        self.post_message(CandidatesReady(index, position, candidates, chosen))

    def on_candidates_ready(self: ChatScreen, message: CandidatesReady) -> None:
        if self._inspecting != (message.index, message.position) or self.generating:
            return
        tokens = self.thread.reply_tokens(self.thread.messages[message.index])
        try:
            chosen_text = self.thread.model.token_text(message.chosen)
        except EzChatError as error:  # a server that has gone cannot spell the token
            self.report(error)
            return
        hint = "Enter: regenerate from here · i: your own text"
        header = (
            f"Token {message.position + 1}/{len(tokens)}: {visible_token(chosen_text)}\n"
            f"←/→ move · {hint}"
        )
        self.candidates_pane.show(message.candidates, message.chosen, header)

    def on_candidates_pane_move(self: ChatScreen, message: CandidatesPane.Move) -> None:
        if self._inspecting is None:
            self.action_inspect_tokens()
            return
        if self.generating:
            return
        index, position = self._inspecting
        count = len(self.thread.reply_tokens(self.thread.messages[index]))
        target = max(0, min(count - 1, position + message.step))
        if target != position:
            self._inspect(index, target)

    def on_candidates_pane_type_own(self: ChatScreen, message: CandidatesPane.TypeOwn) -> None:
        """Branch at the inspected token with typed text: the reply keeps its tokens before
        it, the text takes the token's place, and the model goes on from there."""
        if self._inspecting is None or not self._can("branch"):
            return
        index, position = self._inspecting

        def done(text: str | None) -> None:
            if text and self._can("branch"):
                self.start_generation(ReplyKind.BRANCH, position=position, text=text, index=index)

        self.app.push_screen(
            TextEditScreen(
                f"Branch at token {position + 1}: your text replaces it, then the bot goes on",
                "",
                hint="ctrl+s branches · escape cancels (the reply stays as it is)",
            ),
            done,
        )

    def on_candidates_pane_picked(self: ChatScreen, message: CandidatesPane.Picked) -> None:
        if self._inspecting is None or not self._can("branch"):
            return
        index, position = self._inspecting
        self.start_generation(
            ReplyKind.BRANCH, position=position, token=message.token_id, index=index
        )


def stored_candidates(thread, index: int, position: int, k: int) -> tuple[list, int] | None:
    """The candidates at token ``position`` of reply ``messages[index]`` and the token chosen
    there, as the model weighed them when it wrote the reply; None where that is not known."""
    node = thread.node_at(index)
    infos = node.token_info
    if not infos or position >= len(infos) or infos[position] is None:
        return None
    info = infos[position]
    tokens = thread.reply_tokens(thread.messages[index])
    if position >= len(tokens) or tokens[position] != info.id:
        return None  # the text changed since (an edit): the stored weighing is not of it
    try:
        text = thread.model.token_text
        candidates = [Candidate(text(token), p, token) for token, p in info.top[:k]]
    except EzChatError:  # a server that has gone cannot spell the tokens: compute instead
        return None
    return candidates, info.id
