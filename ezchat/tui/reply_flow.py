"""The chat screen's replies: starting one in a worker, streaming it into its view a few times
a second, stopping it within a token, and recording it when it ends.

The worker holds the app's model lock for the whole reply and talks to the screen only through
messages (ReplyStarted, StreamTick, ReplyFinished); the reply's text is saved from the worker
as it streams, so quitting mid-reply keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from ..chat.reply_kind import ReplyKind
from ..errors import EzChatError
from .conversation import MessageView
from .events import ReplyFeed, ReplyFinished, ReplyStarted, StreamTick
from .prompt_input import PromptInput

if TYPE_CHECKING:
    from .chat_screen import ChatScreen

CANDIDATES_K = 10
# How often streamed text is drawn. Drawing at every token would keep the UI thread busy and,
# through the GIL, slow the generation thread; 10 redraws a second read as continuous.
STREAM_SECONDS = 0.1


class ReplyFlow:
    """Mixed into ChatScreen (the type hints below say so)."""

    generating = False
    _reply = None

    def _setup_replies(self: ChatScreen) -> None:
        self._stop_requested = False
        self._feed = ReplyFeed()
        self._stream_view: MessageView | None = None
        self._live_candidates: list | None = None
        self._sparse_live_candidates = False
        # the timer posts a message, so flushing takes turns with the other reply handlers
        self._flush_timer = self.set_interval(
            STREAM_SECONDS, lambda: self.post_message(StreamTick()), pause=True
        )

    async def on_prompt_input_submitted(self: ChatScreen, event: PromptInput.Submitted) -> None:
        text = event.text
        if not self._can("send"):
            return
        input_box = self.query_one(PromptInput)
        if event.as_prefix:
            input_box.clear()
            input_box.set_prefix_mode(False)
            self.start_generation(ReplyKind.REPLY, prefix=text)
            return
        if not text.strip():
            return
        input_box.remember(text)
        input_box.clear()
        try:
            self.chat.add_user_message(text)
        except EzChatError as error:
            self.report(error)
            return
        await self.conversation.add(self._make_view(len(self.thread.messages) - 1))
        self.start_generation(ReplyKind.REPLY)

    def start_generation(self: ChatScreen, kind: ReplyKind | str, **arguments: Any) -> None:
        """Begin a reply of ``kind`` in a worker; ``arguments`` go to ``Thread.start``."""
        self.generating = True
        self._stop_requested = False
        self._inspecting = None
        self._live_candidates = None
        self._feed = ReplyFeed()
        self._flush_timer.resume()
        self.conversation.anchor()
        self.candidates_pane.follow(self._latest_live_candidates)
        self.refresh_bindings()
        kind = ReplyKind(kind)
        if kind is ReplyKind.REROLL:
            # the versions kept so far number the new one, and pick its seed
            arguments.setdefault("version", len(self.thread.tree.siblings(self.thread.tree.active)))
        self._generate(kind, arguments)

    @work(thread=True, group="generation", exit_on_error=False)
    def _generate(self: ChatScreen, kind: ReplyKind, arguments: dict[str, Any]) -> None:
        thread, feed = self.thread, self._feed
        with self.app.model_lock:
            try:
                reply = thread.start(kind, candidates=CANDIDATES_K, **arguments)
            except EzChatError as error:
                self.post_message(ReplyFinished(kind, recorded=False, error=str(error)))
                return
            # the prefix, the kept part of a branch or the reply continued, split in two
            reasoning_head, head = reply.head_parts
            # The pane shows the newest candidates a few times a second, so the worker
            # computes them only when the pane asks (see _latest_live_candidates).
            self._sparse_live_candidates = reply.generation.candidates_only_on_request()
            self._reply = reply
            if self._stop_requested:
                reply.cancel()
            self.post_message(ReplyStarted(kind, reply, head, reasoning_head))
            # the reply is written here, not on the UI thread: after Ctrl+Q or a signal the UI
            # handlers never run, while the app's on_unmount waits for this lock
            saver = self.chat.start_saving_reply(kind, head, reasoning_head, reply)
            error = None
            try:
                for event in reply:
                    if event.candidates is not None:
                        self._live_candidates = event.candidates
                    reasoning, text = reply.parts
                    if text or reasoning:
                        splitter = reply.splitter
                        feed.push(text, reasoning, splitter.thinking, splitter.reasoning_tokens)
                        saver.grow(text, reasoning)
            except EzChatError as exc:
                error = str(exc)
            finally:
                if reply.message is not None:
                    saver.finish(reply.message)
        self.post_message(ReplyFinished(kind, recorded=True, error=error, saver=saver))

    def _latest_live_candidates(self: ChatScreen) -> list | None:
        reply = self._reply
        if reply is not None:
            reply.generation.request_candidates()
        return self._live_candidates

    async def on_reply_started(self: ChatScreen, message: ReplyStarted) -> None:
        if message.kind == ReplyKind.REPLY:
            view = MessageView(len(self.thread.messages), "bot", message.head)
            await self.conversation.add(view)
        else:
            # a reroll's path ends at the prompt until the new reply is recorded
            rerolled = message.kind == ReplyKind.REROLL
            last = len(self.thread.messages) - (0 if rerolled else 1)
            view = self.conversation.view_at(last)
            later = any(v.index > last for v in self.conversation.views)
            if view is None or later:
                # a branch of an earlier reply: the messages after it stay on the old branch,
                # so the conversation is drawn again down to the new one
                await self._show_conversation()
                view = self.conversation.view_at(last)
        assert view is not None
        await view.begin_stream(message.head, message.reasoning_head)
        self._stream_view = view

    async def on_stream_tick(self: ChatScreen, _: StreamTick) -> None:
        await self._flush_feed()

    async def _flush_feed(self: ChatScreen) -> None:
        """Show the text written since the last tick (a timer, STREAM_SECONDS apart)."""
        view = self._stream_view
        if view is not None:  # before the reply's view exists, the text waits in the feed
            feed = self._feed
            view.write_reasoning(feed.take_reasoning(), feed.thinking, feed.thinking_tokens)
            await view.write(feed.take())

    async def on_reply_finished(self: ChatScreen, message: ReplyFinished) -> None:
        self._flush_timer.pause()
        view, self._stream_view = self._stream_view, None
        rest = self._feed.take()
        if view is not None and rest:
            await view.write(rest)
        if view is not None:
            view.write_reasoning(self._feed.take_reasoning(), False, self._feed.thinking_tokens)
        try:
            if message.recorded:
                label = self.chat.reply_finished(message.kind, message.saver)
                if view is not None:
                    last = self.thread.messages[-1]
                    await view.end_stream(last["content"], label, last.get("reasoning", ""))
                    if self.conversation.is_anchored:  # the full render may be taller
                        self.conversation.scroll_end(animate=False)
            elif view is not None:
                await view.end_stream(view.content)
        except EzChatError as error:
            self.report(error)
        finally:
            self.generating = False
            self._reply = None
            if view is not None:
                self._show_heat(view)
            self.candidates_pane.stop_following()
            self.refresh_bindings()
            self._refresh_context(already_said=message.error)
        last = self.thread.messages[-1:]
        if message.recorded and self._sparse_live_candidates and last and last[0]["role"] == "bot":
            # The live candidates may be a few tokens old; show the last token's exactly.
            self._inspect_reply_end(len(self.thread.messages) - 1)
        if message.error:
            self.notify(message.error, severity="error", timeout=8)

    # --- the actions on replies ----------------------------------------------------------------

    def action_stop(self: ChatScreen) -> None:
        """Stop the reply within one token; what was written stays in the chat."""
        if not self.generating:
            return
        self._stop_requested = True
        if self._reply is not None:
            self._reply.cancel()

    def _last_is_bot(self: ChatScreen, action: str) -> bool:
        messages = self.thread.messages
        if not messages or messages[-1]["role"] != "bot":
            self.notify(f"There is no bot reply to {action}; send a message first.")
            return False
        return True

    def action_reroll(self: ChatScreen) -> None:
        """A new reply to the same prompt; the earlier one stays as a version."""
        if self._can("reroll") and self._last_is_bot("reroll"):
            self.start_generation(ReplyKind.REROLL)

    def action_continue_reply(self: ChatScreen) -> None:
        """The bot goes on with its last reply."""
        if self._can("continue") and self._last_is_bot("continue"):
            self.start_generation(ReplyKind.CONTINUE)

    def action_toggle_prefix(self: ChatScreen) -> None:
        """The input's text becomes the start of the bot's next reply."""
        input_box = self.query_one(PromptInput)
        input_box.set_prefix_mode(not input_box.prefix_mode)
        input_box.focus()

    def action_toggle_thinking(self: ChatScreen) -> None:
        """Thinking off, or on again, for a template that has the switch (saved with the chat)."""
        if not self._can("switch thinking"):
            return
        try:
            said = self.chat.set_thinking(self.thread.thinking is False)
        except EzChatError as error:
            self.report(error)
            return
        self.notify(said)
        self._refresh_context()
