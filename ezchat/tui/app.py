"""``EzChatApp``: the Textual app on top of a Model and a Thread.

Blocking work (loading the model, generating, computing candidates) runs in thread workers
that hold ``_model_lock`` while they use the model and talk to the UI only through messages.
Every action has a binding id, so ``[keymap]`` in the config file can remap it, and a command
in the palette.

Text from outside ezchat (model output, server replies, GGUF metadata, file names, imported
chats) reaches the screen only through ``visible`` (ezchat.safetext) and never as markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header
from textual.worker import get_current_worker

from ..chat import formats, samplers
from ..chat.reply_kind import ReplyKind
from ..chat.samplers import SamplerSettings
from ..chat.thread import Thread
from ..errors import EzChatError
from ..safetext import visible
from ..session import ChatOptions, load_model, make_thread
from ..settings.config import MAX_MARKDOWN_CHARS, Config, config_path, load_config, update_config
from ..storage.chats import restore_state, thread_from_store
from ..storage.store import ChatStore
from .candidates import CandidatesPane, visible_token
from .chatlog import ChatLog
from .commands import EzChatCommands
from .context import ContextPane
from .conversation import ConversationView, MessageView
from .dialogs import ConfirmScreen, PickerScreen, TextEditScreen
from .events import (
    CandidatesReady,
    ModelLoaded,
    ModelLoadFailed,
    ReplyFeed,
    ReplyFinished,
    ReplyStarted,
    SaveFailed,
    StreamTick,
)
from .loading import LoadingScreen
from .prompt_input import PromptInput
from .settings import binding_ids, check_keymap, theme_problem

if TYPE_CHECKING:
    from ..chat.thread import Reply
    from ..engine.model import Model

CANDIDATES_K = 10
# How often streamed text is drawn. Drawing at every token would keep the UI thread busy and,
# through the GIL, slow the generation thread; 10 redraws a second read as continuous.
STREAM_SECONDS = 0.1
# Signals that end the app the way Ctrl+Q does (the reply so far saved, the cache kept), with
# status 128 + the signal. Without a handler Python dies at once on SIGTERM and SIGHUP.
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class EzChatApp(App):
    """The chat app: a loading screen while the model loads, then the conversation with the
    candidates and context panes."""

    # absolute, so subclasses in other folders (benchmarks, tests) find it too
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "ezchat"
    COMMANDS = App.COMMANDS | {EzChatCommands}

    # (id, key, action, description): the id is what a [keymap] entry in the config names.
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+r", "reroll", "Reroll", id="reroll"),
        Binding("ctrl+g", "continue_reply", "Continue", id="continue"),
        Binding("ctrl+b", "toggle_prefix", "Prefix", id="prefix"),
        Binding("f2", "edit_sampler", "Sampler", id="sampler_form"),
        Binding("f3", "pick_preset", "Preset", id="preset"),
        Binding("f4", "pick_format", "Format", id="format"),
        Binding("f5", "chat_list", "Chats", id="chats"),
        Binding("f8", "inspect_tokens", "Tokens", id="tokens"),
        Binding("ctrl+n", "new_chat", "New chat", id="new_chat", show=False),
    ]

    def __init__(
        self,
        options: ChatOptions,
        resume: bool = False,
        chat_id: int | None = None,
        store_path: str | Path | None = None,
        *,
        show_timings: bool = True,
        max_markdown_chars: int | None = None,
    ) -> None:
        super().__init__()
        self.config = self._read_config()
        # the longest message rendered as Markdown; longer ones are plain text (conversation.py)
        self.max_markdown_chars = next(
            limit
            for limit in (max_markdown_chars, self.config.max_markdown_chars, MAX_MARKDOWN_CHARS)
            if limit is not None
        )
        self.options = options.with_config(self.config) if self._config_ok else options
        self.resume = resume
        self.requested_chat_id = chat_id
        self.store_path = store_path
        self.show_timings = show_timings
        self.model: Model | None = None
        self.thread: Thread | None = None
        self.store: ChatStore | None = None
        self.chat: ChatLog | None = None
        self.generating = False
        # True once the model is loaded and the chat is on screen with the input focused
        self.ready = False
        self.load_seconds = 0.0
        self._model_lock = threading.Lock()
        self._reply: Reply | None = None
        self._stop_requested = False
        self._feed = ReplyFeed()
        self._stream_view: MessageView | None = None
        self._live_candidates: list | None = None
        self._sparse_live_candidates = False
        # (message index, token position) the candidates pane inspects, when it does
        self._inspecting: tuple[int, int] | None = None
        self._config_problems: list[str] = []
        # the first failed write to the chats file; from then on chats stay in memory only
        self._store_failure: str | None = None
        # run_app sets this: only the app that owns the process takes its signals (not tests)
        self.handle_signals = False
        if self.config.keymap:
            keymap, self._config_problems = check_keymap(
                self.config.keymap, config_path(), binding_ids()
            )
            self.set_keymap(keymap)

    # --- start ---------------------------------------------------------------------------------

    def _read_config(self) -> Config:
        self._config_ok = True
        self._config_error = ""
        try:
            return load_config()
        except EzChatError as error:
            self._config_ok = False
            self._config_error = str(error)
            return Config()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="chat"):
                yield ConversationView(id="conversation")
                yield PromptInput(id="input")
            with Vertical(id="side"):
                yield CandidatesPane(id="candidates")
                yield ContextPane(id="context")
        yield Footer()

    def on_mount(self) -> None:
        theme = self.config.theme
        if theme and theme in self.available_themes:
            self.theme = theme
        elif theme:
            self._config_problems.append(theme_problem(theme, config_path(), self.available_themes))
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        if self._config_error:
            self.notify(self._config_error, title="Config file ignored", severity="error")
        for problem in self._config_problems:
            self.notify(problem, title="Config file", severity="warning", timeout=12)
        # the timer posts a message, so flushing takes turns with the other reply handlers
        self._flush_timer = self.set_interval(
            STREAM_SECONDS, lambda: self.post_message(StreamTick()), pause=True
        )
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in EXIT_SIGNALS:
                loop.add_signal_handler(signum, self._exit_on_signal, signum)
        loading = LoadingScreen(self.options.model, self.options.server)
        self.push_screen(loading)
        self._open_store()
        self._load_model(loading)

    def _open_store(self) -> None:
        try:
            self.store = ChatStore(self.store_path)
        except EzChatError as error:
            self.notify(f"{error}; this chat will not be saved", severity="error", timeout=10)

    @work(thread=True, group="model", exit_on_error=False)
    def _load_model(self, loading: LoadingScreen) -> None:
        started = time.perf_counter()
        worker = get_current_worker()

        def progress(fraction: float) -> bool:
            loading.loaded = fraction
            return not worker.is_cancelled  # quitting mid-load stops llama.cpp reading

        try:
            with self._model_lock:
                model = load_model(self.options, progress)
                self.model = model
                thread = make_thread(model, self.options)
        except EzChatError as error:
            self.post_message(ModelLoadFailed(str(error)))
            return
        self.post_message(ModelLoaded(thread, time.perf_counter() - started))

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        if isinstance(self.screen, LoadingScreen):
            self.screen.show_error(message.error)
        else:
            self.notify(message.error, severity="error")

    async def on_model_loaded(self, message: ModelLoaded) -> None:
        self.load_seconds = message.load_seconds
        self.thread = message.thread
        self.chat = self._adopt(
            ChatLog(self.thread, self.store, format_name=self.options.format or "auto")
        )
        chat_id = self.requested_chat_id
        if chat_id is None and self.resume and self.store is not None:
            last = self.store.last_chat()
            chat_id = last.id if last is not None else None
            if chat_id is None:
                self.notify("No saved chat to resume yet; this is a new one.")
        if chat_id is not None:
            self._open_chat(chat_id)
        if isinstance(self.screen, LoadingScreen):
            self.pop_screen()
        await self._show_conversation()
        self._update_header()
        self._warn_about_format()
        self.query_one(PromptInput).focus()
        self.ready = True

    def _adopt(self, chat: ChatLog) -> ChatLog:
        """Make ``chat`` report a failed write (once for the whole app) and, after one has
        failed, not try again."""
        chat.on_save_failed = lambda error: self.post_message(SaveFailed(error))
        if self._store_failure is not None:
            chat.save_error = self._store_failure
        return chat

    def on_save_failed(self, message: SaveFailed) -> None:
        if self._store_failure is not None:
            return
        self._store_failure = message.error
        if self.chat is not None:
            self.chat.save_error = message.error
        self.notify(
            f"Chats are no longer being saved: {message.error}. This chat stays open; "
            "'Export this chat' (ctrl+p) writes it to a file.",
            severity="error",
            timeout=20,
        )

    def _warn_about_format(self) -> None:
        """A format whose markers the model does not know as tokens (the pane says it too)."""
        warning = self.thread.format_choice.warning if self.thread is not None else None
        if warning:
            self.notify(warning, title="Prompt format", severity="warning", timeout=12)

    def _update_header(self) -> None:
        if self.thread is None:
            return
        # general.name is the GGUF's to choose, and format and preset names are file names
        self.title = visible(f"ezchat · {self.thread.model.name}")
        format_name = self.chat.format_name if self.chat else self.thread.format.name
        self.sub_title = visible(f"format {format_name} · sampler {self.thread.sampler.name}")
        self._refresh_context()

    def _remember_theme(self, theme: Any) -> None:
        try:
            update_config(theme=theme.name)
        except (EzChatError, OSError) as error:
            self.notify(f"the theme could not be saved: {error}", severity="warning")

    # --- helpers -------------------------------------------------------------------------------

    @property
    def conversation(self) -> ConversationView:
        return self.query_one(ConversationView)

    @property
    def candidates_pane(self) -> CandidatesPane:
        return self.query_one(CandidatesPane)

    def report(self, error: BaseException) -> None:
        self.notify(str(error), severity="error", timeout=8)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification, the app's and its screens' (``Widget.notify`` comes here), is
        plain text: they quote errors that name files, servers' replies and model text, so
        ``markup`` is ignored (a ``[`` in a file name would otherwise be read as markup, and a
        bad tag raises)."""
        super().notify(
            visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While the model loads (or failed to), the chat's keys are hidden from the footer
        and do nothing: the loading screen offers only what works there."""
        return not (isinstance(self.screen, LoadingScreen) and action in _CHAT_ACTIONS)

    def _can(self, action: str) -> bool:
        """True when ``action`` may run now; otherwise say why."""
        if self.thread is None or self.chat is None:
            self.notify(f"The model is still loading; {action} in a moment.")
            return False
        if self.generating:
            self.notify(f"The bot is writing; press Escape to stop it, then {action}.")
            return False
        return True

    def _make_view(self, index: int) -> MessageView:
        assert self.thread is not None and self.chat is not None
        message = self.thread.messages[index]
        return MessageView(
            index,
            message["role"],
            message["content"],
            self.chat.entries[index].label,
            message.get("reasoning", ""),
        )

    async def _show_conversation(self) -> None:
        """Draw every message again (after a change that moves indexes)."""
        assert self.thread is not None
        await self.conversation.show(len(self.thread.messages), self._make_view)
        self._refresh_context()

    def _refresh_context(self, already_said: str | None = None) -> None:
        """Count the context again, in the pane's worker. Counting asks a server to tokenize,
        so it fails when the server has gone: the pane keeps its last numbers and the error is
        shown, unless it is ``already_said`` (the reply that just failed said the same)."""
        if self.thread is None:
            return
        self.query_one(ContextPane).refresh_from(
            self.thread, self.show_timings, lock=self._model_lock, already_said=already_said
        )

    # --- sending and generating ----------------------------------------------------------------

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
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

    def start_generation(self, kind: str, **arguments: Any) -> None:
        """Begin a reply in a worker. ``kind``: reply (``prefix=``), reroll, continue, branch
        (``position=``, ``token=``)."""
        self.generating = True
        self._stop_requested = False
        self._inspecting = None
        self._live_candidates = None
        self._feed = ReplyFeed()
        self._flush_timer.resume()
        self.conversation.anchor()
        self.candidates_pane.follow(self._latest_live_candidates)
        self.refresh_bindings()
        self._generate(kind, arguments)

    @work(thread=True, group="generation", exit_on_error=False)
    def _generate(self, kind: str, arguments: dict[str, Any]) -> None:
        thread = self.thread
        assert thread is not None
        feed = self._feed
        with self._model_lock:
            try:
                if kind == ReplyKind.REROLL:
                    reply = thread.start_reroll(
                        candidates=CANDIDATES_K, sampler=self._reroll_sampler()
                    )
                elif kind == ReplyKind.BRANCH:
                    reply = thread.start_branch(
                        arguments["position"], arguments["token"], candidates=CANDIDATES_K
                    )
                elif kind == ReplyKind.CONTINUE:
                    reply = thread.start_reply(continue_last=True, candidates=CANDIDATES_K)
                else:
                    reply = thread.start_reply(arguments.get("prefix", ""), candidates=CANDIDATES_K)
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
            # handlers never run, while on_unmount waits for this lock
            saver = self.chat.start_saving_reply(kind, head, reasoning_head)
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

    def _latest_live_candidates(self) -> list | None:
        reply = self._reply
        if reply is not None:
            reply.generation.request_candidates()
        return self._live_candidates

    def _reroll_sampler(self) -> SamplerSettings:
        """The sampler for a reroll. A fixed seed would write the same reply again, so each
        version gets its own seed (still reproducible: seed + version number)."""
        sampler = self.thread.sampler
        if sampler.seed < 0 or sampler.is_greedy:
            return sampler
        versions = len(self.chat.entries[-1].versions)
        return dataclasses.replace(sampler, seed=(sampler.seed + versions) % 2**32)

    async def on_reply_started(self, message: ReplyStarted) -> None:
        assert self.thread is not None and self.chat is not None
        if message.kind == ReplyKind.REPLY:
            view = MessageView(len(self.thread.messages), "bot", message.head)
            await self.conversation.add(view)
        else:
            view = self.conversation.view_at(len(self.chat.entries) - 1)
            if view is None:  # not drawn yet (should not happen); draw it
                await self._show_conversation()
                view = self.conversation.view_at(len(self.chat.entries) - 1)
        assert view is not None
        await view.begin_stream(message.head, message.reasoning_head)
        self._stream_view = view

    async def on_stream_tick(self, _: StreamTick) -> None:
        await self._flush_feed()

    async def _flush_feed(self) -> None:
        """Show the text written since the last tick (a timer, STREAM_SECONDS apart)."""
        view = self._stream_view
        if view is not None:  # before the reply's view exists, the text waits in the feed
            feed = self._feed
            view.write_reasoning(feed.take_reasoning(), feed.thinking, feed.thinking_tokens)
            await view.write(feed.take())

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        assert self.thread is not None and self.chat is not None
        self._flush_timer.pause()
        view, self._stream_view = self._stream_view, None
        rest = self._feed.take()
        if view is not None and rest:
            await view.write(rest)
        if view is not None:
            view.write_reasoning(self._feed.take_reasoning(), False, self._feed.thinking_tokens)
        try:
            if message.recorded:
                entry = self.chat.reply_finished(message.kind, message.saver)
                if view is not None:
                    last = self.thread.messages[-1]
                    await view.end_stream(last["content"], entry.label, last.get("reasoning", ""))
                    if self.conversation.is_anchored:  # the full render may be taller
                        self.conversation.scroll_end(animate=False)
            elif view is not None:
                await view.end_stream(view.content)
        except EzChatError as error:
            self.report(error)
        finally:
            self.generating = False
            self._reply = None
            self.candidates_pane.stop_following()
            self.refresh_bindings()
            self._refresh_context(already_said=message.error)
        last = self.thread.messages[-1:]
        if message.recorded and self._sparse_live_candidates and last and last[0]["role"] == "bot":
            # The live candidates may be a few tokens old; show the last token's exactly.
            self._inspect_reply_end(len(self.thread.messages) - 1)
        if message.error:
            self.notify(message.error, severity="error", timeout=8)

    # --- actions -------------------------------------------------------------------------------

    def action_stop(self) -> None:
        """Stop the reply within one token; what was written stays in the chat."""
        if not self.generating:
            return
        self._stop_requested = True
        if self._reply is not None:
            self._reply.cancel()

    def _last_is_bot(self, action: str) -> bool:
        messages = self.thread.messages
        if not messages or messages[-1]["role"] != "bot":
            self.notify(f"There is no bot reply to {action}; send a message first.")
            return False
        return True

    def action_reroll(self) -> None:
        """A new reply to the same prompt; the earlier one stays as a version."""
        if self._can("reroll") and self._last_is_bot("reroll"):
            self.start_generation(ReplyKind.REROLL)

    def action_continue_reply(self) -> None:
        """The bot goes on with its last reply."""
        if self._can("continue") and self._last_is_bot("continue"):
            self.start_generation(ReplyKind.CONTINUE)

    def action_toggle_prefix(self) -> None:
        """The input's text becomes the start of the bot's next reply."""
        input_box = self.query_one(PromptInput)
        input_box.set_prefix_mode(not input_box.prefix_mode)
        input_box.focus()

    # --- candidates: inspecting a reply's tokens and branching ---------------------------------

    def action_inspect_tokens(self, index: int | None = None) -> None:
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

    def _inspect_reply_end(self, index: int) -> bool:
        """Show the candidates at the last token of reply ``index``; False when it is empty."""
        tokens = self.thread.reply_tokens(self.thread.messages[index])
        if tokens:
            self._inspect(index, len(tokens) - 1)
        return bool(tokens)

    def _inspect(self, index: int, position: int) -> None:
        self._inspecting = (index, position)
        self._candidates_at(index, position)

    @work(thread=True, group="candidates", exclusive=True, exit_on_error=False)
    def _candidates_at(self, index: int, position: int) -> None:
        thread = self.thread
        with self._model_lock:
            if get_current_worker().is_cancelled:
                return
            try:
                candidates = thread.candidates_at(index, position, CANDIDATES_K)
                chosen = thread.reply_tokens(thread.messages[index])[position]
            except EzChatError as error:
                self.call_from_thread(self.report, error)
                return
        self.post_message(CandidatesReady(index, position, candidates, chosen))

    def on_candidates_ready(self, message: CandidatesReady) -> None:
        if self._inspecting != (message.index, message.position) or self.generating:
            return
        tokens = self.thread.reply_tokens(self.thread.messages[message.index])
        try:
            chosen_text = self.thread.model.token_text(message.chosen)
        except EzChatError as error:  # a server that has gone cannot spell the token
            self.report(error)
            return
        is_last = message.index == len(self.thread.messages) - 1
        hint = "Enter: regenerate from here" if is_last else "only the last reply can branch"
        header = (
            f"Token {message.position + 1}/{len(tokens)}: {visible_token(chosen_text)}\n"
            f"←/→ move · {hint}"
        )
        self.candidates_pane.show(message.candidates, message.chosen, header)

    def on_candidates_pane_move(self, message: CandidatesPane.Move) -> None:
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

    def on_candidates_pane_picked(self, message: CandidatesPane.Picked) -> None:
        if self._inspecting is None or not self._can("branch"):
            return
        index, position = self._inspecting
        if index != len(self.thread.messages) - 1:
            self.notify("Only the last reply can be regenerated from a token; pick one there.")
            return
        self.start_generation(ReplyKind.BRANCH, position=position, token=message.token_id)

    # --- message actions -----------------------------------------------------------------------

    @on(MessageView.Requested)
    async def on_message_requested(self, event: MessageView.Requested) -> None:
        index = event.view.index
        action = event.action
        if action == "copy":
            self.copy_text(self.thread.messages[index]["content"])
            return
        if action == "tokens":
            if self.thread.messages[index]["role"] != "bot":
                self.notify("Only a bot reply has token candidates; pick a bot message.")
                return
            self.action_inspect_tokens(index)
            return
        if not self._can(action.replace("_", " ")):
            return
        if action == "version":
            if self.chat.select_version(index, event.step):
                entry = self.chat.entries[index]
                await event.view.set_content(
                    entry.versions[entry.current], entry.label, entry.reasoning
                )
                self._refresh_context()
        elif action == "edit":
            self._edit_message(index)
        elif action == "delete":
            self._delete_message(index)
        elif action == "insert_system":
            self._insert_system(index)

    def _edit_message(self, index: int) -> None:
        message = self.thread.messages[index]

        async def done(text: str | None) -> None:
            if text is not None and text != message["content"]:
                self.chat.edit(index, text)
                await self._show_conversation()

        self.push_screen(
            TextEditScreen(f"Edit the {message['role']} message", message["content"]), done
        )

    def _delete_message(self, index: int) -> None:
        async def done(yes: bool | None) -> None:
            if yes:
                self.chat.delete(index)
                await self._show_conversation()

        self.push_screen(ConfirmScreen("Delete this message?"), done)

    def _insert_system(self, index: int) -> None:
        async def done(text: str | None) -> None:
            if text:
                self.chat.insert(index, "system", text)
                await self._show_conversation()

        self.push_screen(
            TextEditScreen("Insert a system message before this one", hint="ctrl+s saves"), done
        )

    def copy_text(self, text: str) -> None:
        """Copy with OSC 52 (works over SSH in most terminals) and, where there is one, the
        system clipboard tool too, since some terminals ignore OSC 52."""
        from .clipboard import copy_with_system_tool

        self.copy_to_clipboard(text)
        tool = copy_with_system_tool(text)
        where = f" (and {tool})" if tool else " via the terminal (OSC 52)"
        self.notify(f"Copied {len(text)} characters{where}.")

    # --- chat-wide actions ---------------------------------------------------------------------

    def action_system_prompt(self) -> None:
        """Change the system prompt."""
        if not self._can("change the system prompt"):
            return
        messages = self.thread.messages
        current = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""

        async def done(text: str | None) -> None:
            if text is not None:
                self.chat.set_system_prompt(text.strip())
                await self._show_conversation()

        self.push_screen(
            TextEditScreen("System prompt", current, hint="Empty removes it. ctrl+s saves."), done
        )

    def action_clear_chat(self) -> None:
        """Delete every message but the system prompt."""
        if not self._can("clear the chat"):
            return

        async def done(yes: bool | None) -> None:
            if yes:
                self.chat.clear()
                self.candidates_pane.clear()
                await self._show_conversation()

        self.push_screen(ConfirmScreen("Clear this chat? Its messages are deleted."), done)

    async def action_new_chat(self) -> None:
        """Start a new chat; the current one stays saved."""
        if not self._can("start a new chat"):
            return
        self.chat.save_state()
        old = self.thread
        self.thread = Thread(old.model, old.format, old.sampler)
        if self.options.system is not None:
            self.thread.set_system_prompt(self.options.system)
        self.chat.release()
        self.chat = self._adopt(ChatLog(self.thread, self.store, format_name=self.chat.format_name))
        self.candidates_pane.clear()
        await self._show_conversation()

    def action_pick_preset(self) -> None:
        """Switch to another sampler preset."""
        if not self._can("switch presets"):
            return
        choices = []
        for name in samplers.available():
            try:
                choices.append((name, samplers.description(name)))
            except EzChatError as error:
                choices.append((name, f"(broken: {error})"))

        def done(name: str | None) -> None:
            if name is None:
                return
            try:
                self.thread.sampler = samplers.load(name)
            except EzChatError as error:
                self.report(error)
                return
            self.chat.save_settings()
            self._update_header()

        self.push_screen(PickerScreen("Sampler preset", choices, self.thread.sampler.name), done)

    def action_pick_format(self) -> None:
        """Switch the prompt format."""
        if not self._can("switch formats"):
            return
        choices = [("auto", "the model's own chat template")]
        choices += [(name, str(file.source)) for name, file in sorted(formats.sources().items())]

        def done(name: str | None) -> None:
            if name is None:
                return
            try:
                self.thread.set_format(name if name == "auto" else formats.load(name))
            except EzChatError as error:
                self.report(error)
                return
            self.chat.format_name = name
            self.chat.save_settings()
            self._update_header()
            self._warn_about_format()

        self.push_screen(PickerScreen("Prompt format", choices, self.chat.format_name), done)

    def action_edit_sampler(self) -> None:
        """Edit the sampler's values in a form that checks them."""
        if not self._can("edit the sampler"):
            return
        from .sampler_form import SamplerFormScreen

        def done(sampler) -> None:
            if sampler is not None:
                self.thread.sampler = sampler
                self.chat.save_settings()
                self._update_header()

        self.push_screen(SamplerFormScreen(self.thread.sampler), done)

    def action_chat_list(self) -> None:
        """Open, rename, delete and export saved chats."""
        if not self._can("open the chat list"):
            return
        if self.store is None:
            self.notify("Chats are not being saved (the store could not be opened).")
            return
        from .chat_list import ChatListScreen

        async def done(chat_id: int | None) -> None:
            current = self.chat.chat_id
            if chat_id is not None and chat_id != current:
                self.chat.save_state()
                self._open_chat(chat_id)
                await self._show_conversation()
                self._update_header()
            elif current is not None and current not in {c.id for c in self.store.chats()}:
                self.chat.chat_id = None  # deleted in the list: go on in a new chat
                await self.action_new_chat()

        self.push_screen(ChatListScreen(self.store, self.chat.chat_id), done)

    def _open_chat(self, chat_id: int) -> None:
        """Make the saved chat ``chat_id`` the current one (the model stays loaded)."""
        notes: list[str] = []
        with self._model_lock:
            try:
                thread = thread_from_store(self.store, chat_id, self.model, notes=notes)
                chat = ChatLog.open(self.store, chat_id, thread)
            except EzChatError as error:
                self.report(error)
                return
            # a stale or missing saved cache only costs a re-evaluation
            with contextlib.suppress(EzChatError):
                restore_state(self.store, chat_id, thread)
        if chat.detached:
            notes.append(
                f"This chat is open in another ezchat, so it is not changed here: what you send "
                f"goes into a copy, '{chat.copy_title}'."
            )
        for note in notes:
            self.notify(note, severity="warning", timeout=8)
        if self.chat is not None:
            self.chat.release()
        self.thread, self.chat = thread, self._adopt(chat)
        self.query_one(PromptInput).load_history(
            [m["content"] for m in thread.messages if m["role"] == "user"]
        )
        self.candidates_pane.clear()

    def action_export_chat(self) -> None:
        """Write this chat to Markdown and JSON files: the chat as shown, so it works when the
        chats file no longer takes writes too."""
        if not self._can("export the chat"):  # mid-reply the Thread is ahead of the log
            return
        if not self.chat.entries:
            self.notify("Send a message first; an empty chat has nothing to export.")
            return
        from .chat_list import write_export

        name = f"chat-{self.chat.chat_id}" if self.chat.chat_id is not None else "unsaved-chat"
        try:
            paths = write_export(self.chat.export_data(), name)
        except OSError as error:
            self.report(EzChatError(f"the chat could not be exported: {error}"))
            return
        self.notify("Exported to " + " and ".join(str(p) for p in paths))

    # --- leaving -------------------------------------------------------------------------------

    def _exit_on_signal(self, signum: int) -> None:
        self.exit(return_code=128 + signum)

    def on_unmount(self) -> None:
        """Stop a reply, keep the chat's cache for next time, and free the model."""
        if self._reply is not None:
            self._reply.cancel()
        # a load or a connection still under way stops at its next progress check, so that
        # quitting never waits on a server that does not answer
        self.workers.cancel_group(self, "model")
        # the worker ends within a token once cancelled; don't hang on a stuck one
        if not self._model_lock.acquire(timeout=10):
            return
        try:
            if self.chat is not None:
                with contextlib.suppress(EzChatError, OSError):
                    self.chat.save_state()
            if self.model is not None:
                self.model.unload()
        finally:
            self._model_lock.release()
            # the process may go on (a script, the tests) and open the chat again
            if self.chat is not None:
                self.chat.release()


_CHAT_ACTIONS = frozenset(binding.action for binding in EzChatApp.BINDINGS)


def run_app(
    options: ChatOptions,
    resume: bool = False,
    chat_id: int | None = None,
    max_markdown_chars: int | None = None,
) -> int:
    """Run the app in the terminal until the user quits; its exit status (1 after a crash).
    Without a terminal it refuses (``EzChatError``) rather than draw into a pipe."""
    require_terminal()
    app = EzChatApp(options, resume=resume, chat_id=chat_id, max_markdown_chars=max_markdown_chars)
    app.handle_signals = True
    app.run()
    return app.return_code or 0


def require_terminal() -> None:
    """The app reads keys from stdin and Textual draws on stderr: both must be terminals, or
    the screen goes into a pipe or a file while nothing can quit it."""
    for name, stream in (("stdin", sys.stdin), ("stderr", sys.__stderr__)):
        if not _is_terminal(stream):
            raise EzChatError(
                f"the full-screen app needs a terminal, and {name} is not one; for piped text "
                "use 'ezchat generate -' (one prompt) or 'ezchat chat' (a chat, line by line)"
            )


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # replaced, or closed
        return False
