"""``ChatScreen``: the conversation and its panes, once the model is loaded.

The screen owns the chat: the Thread, its ChatLog (what is saved), the conversation view, the
candidates and context panes, and every action on them (ezchat/tui/actions.py lists them).
Replies, token inspection and switching chats live in their own modules, mixed in here; the
App (ezchat/tui/app.py) keeps the lifecycle: config, loading the model, the model lock,
quitting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header

from ..chat import formats, samplers
from ..errors import EzChatError
from ..safetext import visible
from .actions import SCREEN, bindings
from .candidates import CandidatesPane
from .chat_switching import ChatSwitching
from .chatlog import ChatLog
from .commands import EzChatCommands
from .context import ContextPane
from .conversation import ConversationView, MessageView
from .dialogs import ConfirmScreen, PickerScreen, TextEditScreen
from .events import SaveFailed
from .footer import KeyFooter
from .grow_flow import GrowFlow
from .heat_view import HeatmapToggle
from .prompt_input import PromptInput
from .reply_flow import ReplyFlow
from .token_inspection import TokenInspection
from .tree_browsing import TreeBrowsing

if TYPE_CHECKING:
    from ..chat.thread import Thread
    from ..storage.store import ChatStore


class ChatScreen(
    ReplyFlow, GrowFlow, TokenInspection, HeatmapToggle, ChatSwitching, TreeBrowsing, Screen
):
    """The chat: the conversation with the input below it, the candidates and the context
    beside it. Empty until ``begin`` gives it the Thread the app made."""

    BINDINGS = bindings(SCREEN)
    COMMANDS = {EzChatCommands}

    def __init__(self, store: ChatStore | None) -> None:
        super().__init__(id="chat-screen")
        self.store = store
        self.thread: Thread | None = None
        self.chat: ChatLog | None = None
        # the first failed write to the chats file; from then on chats stay in memory only
        self._store_failure: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="chat"):
                yield ConversationView(id="conversation")
                yield self.heat_legend_widget()
                yield PromptInput(id="input")
            with Vertical(id="side"):
                yield CandidatesPane(id="candidates")
                yield ContextPane(id="context")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._setup_replies()

    async def begin(self, thread: Thread, chat_id: int | None) -> None:
        """Show ``thread`` (a new chat), or open the saved chat ``chat_id`` over it."""
        self.thread = thread
        format_name = self.app.options.format or "auto"
        self.chat = self._adopt(ChatLog(thread, self.store, format_name=format_name))
        self._warn_about_format()
        self.refresh_bindings()
        if chat_id is not None:
            self.open_chat(chat_id)
            return
        await self._show_conversation()
        self._update_header()
        self.query_one(PromptInput).focus()
        self.app.ready = True

    def on_text_area_changed(self) -> None:
        # typing in the prompt puts off the conversation's heavier drawing (its drafts)
        self.conversation.user_typed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Until the model is loaded the chat's keys are hidden from the footer and do nothing
        (the loading screen offers only what works there)."""
        return self.thread is not None

    # --- saving --------------------------------------------------------------------------------

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

    # --- what the screen shows -----------------------------------------------------------------

    @property
    def conversation(self) -> ConversationView:
        return self.query_one(ConversationView)

    @property
    def candidates_pane(self) -> CandidatesPane:
        return self.query_one(CandidatesPane)

    def report(self, error: BaseException) -> None:
        self.notify(str(error), severity="error", timeout=8)

    def _warn_about_format(self) -> None:
        """A format whose markers the model does not know as tokens (the pane says it too)."""
        warning = self.thread.format_choice.warning if self.thread is not None else None
        if warning:
            self.notify(warning, title="Prompt format", severity="warning", timeout=12)

    def _update_header(self) -> None:
        if self.thread is None:
            return
        # general.name is the GGUF's to choose, and format and preset names are file names
        self.app.title = visible(f"ezchat · {self.thread.model.name}")
        format_name = self.chat.format_name if self.chat else self.thread.format.name
        self.app.sub_title = visible(f"format {format_name} · sampler {self.thread.sampler.name}")

    def _settings_changed(self) -> None:
        """A new format or sampler: the header names it, and the context is counted again (a
        format tokenizes differently, a sampler leaves another room for the reply)."""
        self._update_header()
        self._refresh_context()

    def _can(self, action: str) -> bool:
        """True when ``action`` may run now; otherwise say why."""
        if self.thread is None or self.chat is None:
            self.notify(f"The model is still loading; {action} in a moment.")
            return False
        if self.opening is not None:
            self.notify(f"A chat is opening; {action} in a moment.")
            return False
        if self.generating:
            self.notify(f"The bot is writing; press Escape to stop it, then {action}.")
            return False
        return True

    def _make_view(self, index: int) -> MessageView:
        message = self.thread.messages[index]
        return MessageView(
            index,
            message["role"],
            message["content"],
            self.chat.label(index),
            message.get("reasoning", ""),
        )

    async def _show_conversation(self) -> None:
        """Draw every message again (after a change that moves indexes)."""
        await self.conversation.show(len(self.thread.messages), self._make_view)
        self.refresh_heat()
        self._refresh_context()

    def _refresh_context(self, already_said: str | None = None) -> None:
        """Count the context again, in the pane's worker. Counting asks a server to tokenize,
        so it fails when the server has gone: the pane keeps its last numbers and the error is
        shown, unless it is ``already_said`` (the reply that just failed said the same)."""
        if self.thread is None:
            return
        self.query_one(ContextPane).refresh_from(
            self.thread, self.app.show_timings, lock=self.app.model_lock, already_said=already_said
        )

    @work(thread=True, group="switch", exit_on_error=False)
    def _evaluate_switch(self) -> None:
        """After a switch of branches, evaluate the new path now (only the tokens after the
        part it shares with the old one), so the next reply starts at once; the context pane
        then says how many that took."""
        try:
            with self.app.model_lock:
                self.thread.evaluate_path()
        except EzChatError as error:
            self.app.call_from_thread(self.report, error)
            return
        self.app.call_from_thread(self._refresh_context)

    # --- message actions -----------------------------------------------------------------------

    @on(MessageView.Requested)
    async def on_message_requested(self, event: MessageView.Requested) -> None:
        index = event.view.index
        action = event.action
        if action == "copy":
            self.app.copy_text(self.thread.messages[index]["content"])
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
            was_last = index == len(self.thread.messages) - 1
            if self.chat.select_version(index, event.step):
                if was_last and index == len(self.thread.messages) - 1:
                    message = self.thread.messages[index]
                    await event.view.set_content(
                        message["content"], self.chat.label(index), message.get("reasoning", "")
                    )
                    self._show_heat(event.view)
                else:  # the messages after it follow the branch: show the path again
                    await self._show_conversation()
                self._evaluate_switch()
        elif action == "edit":
            message = self.thread.messages[index]
            self._ask_text(
                f"Edit the {message['role']} message",
                message["content"],
                lambda text: text != message["content"] and self.chat.edit(index, text),
            )
        elif action == "delete":
            self._confirm("Delete this message?", lambda: self.chat.delete(index))
        elif action == "insert_system":
            self._ask_text(
                "Insert a system message before this one",
                "",
                lambda text: bool(text) and self.chat.insert(index, "system", text),
                hint="ctrl+s saves",
            )

    def _ask_text(self, title: str, text: str, apply, hint: str = "") -> None:
        """Edit ``text`` in a dialog; ``apply`` gets the saved text and returns whether the
        chat changed (then it is drawn again)."""

        async def done(saved: str | None) -> None:
            if saved is not None and apply(saved) is not False:
                await self._show_conversation()

        self.app.push_screen(TextEditScreen(title, text, hint), done)

    def _confirm(self, question: str, apply) -> None:
        async def done(yes: bool | None) -> None:
            if yes:
                apply()
                await self._show_conversation()

        self.app.push_screen(ConfirmScreen(question), done)

    # --- chat-wide actions ---------------------------------------------------------------------

    def action_system_prompt(self) -> None:
        """Change the system prompt."""
        if not self._can("change the system prompt"):
            return
        messages = self.thread.messages
        current = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        self._ask_text(
            "System prompt",
            current,
            lambda text: self.chat.set_system_prompt(text.strip()),
            hint="Empty removes it. ctrl+s saves.",
        )

    def action_clear_chat(self) -> None:
        """Delete every message but the system prompt."""
        if self._can("clear the chat"):
            self._confirm("Clear this chat? Its messages are deleted.", self._clear)

    def _clear(self) -> None:
        self.chat.clear()
        self.candidates_pane.clear()

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
            self._settings_changed()

        self.app.push_screen(
            PickerScreen("Sampler preset", choices, self.thread.sampler.name), done
        )

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
            self._settings_changed()
            self._warn_about_format()

        self.app.push_screen(PickerScreen("Prompt format", choices, self.chat.format_name), done)

    def action_edit_sampler(self) -> None:
        """Edit the sampler's values in a form that checks them."""
        if not self._can("edit the sampler"):
            return
        from .sampler_form import SamplerFormScreen

        def done(sampler) -> None:
            if sampler is not None:
                self.thread.sampler = sampler
                self.chat.save_settings()
                self._settings_changed()

        self.app.push_screen(SamplerFormScreen(self.thread.sampler), done)
