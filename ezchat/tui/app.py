"""``EzChatApp``: the Textual app on top of a Model and a Thread.

The App keeps the lifecycle: the config file (keymap, theme), the chats file, loading the
model in a worker behind the loading screen, the model lock, and quitting. The chat itself,
its panes and its actions are the ChatScreen's (ezchat/tui/chat_screen.py). Blocking work
(loading the model, generating, computing candidates, opening a chat) runs in thread workers
that hold ``model_lock`` while they use the model and talk to the UI only through messages.
Every action has a binding id, so ``[keymap]`` in the config file can remap it
(ezchat/tui/actions.py).

Text from outside ezchat (model output, server replies, GGUF metadata, file names, imported
chats) reaches the screen only through ``visible`` (ezchat.safetext) and never as markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.worker import get_current_worker

from ..engine import cpu
from ..errors import EzChatError
from ..safetext import visible
from ..session import ChatOptions, load_model, make_thread
from ..settings.config import MAX_MARKDOWN_CHARS, Config, config_path, load_config, update_config
from ..storage.store import ChatStore
from .chat_screen import ChatScreen
from .events import ModelLoaded, ModelLoadFailed
from .loading import LoadingScreen
from .settings import binding_ids, check_keymap, theme_problem

if TYPE_CHECKING:
    from ..engine.model import Model

# Signals that end the app the way Ctrl+Q does (the reply so far saved, the cache kept), with
# status 128 + the signal. Without a handler Python dies at once on SIGTERM and SIGHUP.
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class EzChatApp(App):
    """The chat app: a loading screen while the model loads, then the ChatScreen."""

    # absolute, so subclasses in other folders (benchmarks, tests) find it too
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "ezchat"
    # the screen the chat is on; a benchmark or a test may time or watch it in a subclass
    CHAT_SCREEN: type[ChatScreen] = ChatScreen

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
        self.store: ChatStore | None = None
        # True once the model is loaded and the chat is on screen with the input focused
        self.ready = False
        self.load_seconds = 0.0
        # every use of the model, in any worker, holds this
        self.model_lock = threading.Lock()
        self._config_problems: list[str] = []
        # run_app sets this: only the app that owns the process takes its signals (not tests)
        self.handle_signals = False
        self.keymap: dict[str, str] = {}
        self._chat_screen: ChatScreen | None = None
        if self.config.keymap:
            self.keymap, self._config_problems = check_keymap(
                self.config.keymap, config_path(), binding_ids()
            )
            self.set_keymap(self.keymap)

    # --- the chat screen's state, for scripts and tests that drive the app -------------------

    @property
    def chat_screen(self) -> ChatScreen:
        assert self._chat_screen is not None, "the chat screen is made when the app mounts"
        return self._chat_screen

    # --- start ---------------------------------------------------------------------------------

    def get_default_screen(self) -> ChatScreen:
        # the chat is the app's first screen, as posting's MainScreen is; the loading screen
        # goes over it until the model is there
        self._chat_screen = self.CHAT_SCREEN(self.store)
        return self._chat_screen

    def _read_config(self) -> Config:
        self._config_ok = True
        self._config_error = ""
        try:
            return load_config()
        except EzChatError as error:
            self._config_ok = False
            self._config_error = str(error)
            return Config()

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
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in EXIT_SIGNALS:
                loop.add_signal_handler(signum, self._exit_on_signal, signum)
        self._open_store()
        self.chat_screen.store = self.store
        loading = LoadingScreen(self.options.model, self.options.server)
        self.push_screen(loading)
        self._load_model(loading)

    def _open_store(self) -> None:
        try:
            self.store = ChatStore(self.store_path)
        except EzChatError as error:
            self.notify(f"{error}; this chat will not be saved", severity="error", timeout=10)

    def _load_options(self) -> ChatOptions:
        """The options the model loads with: the user's thread count, else one that leaves
        the drawing a CPU where the model would take them all (cpu.app_thread_count)."""
        if self.options.n_threads or self.options.server:
            return self.options
        return replace(self.options, n_threads=cpu.app_thread_count().count)

    @work(thread=True, group="model", exit_on_error=False)
    def _load_model(self, loading: LoadingScreen) -> None:
        started = time.perf_counter()
        worker = get_current_worker()

        def progress(fraction: float) -> bool:
            loading.loaded = fraction
            return not worker.is_cancelled  # quitting mid-load stops llama.cpp reading

        try:
            with self.model_lock:
                model = load_model(self._load_options(), progress)
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
        chat_id = self.requested_chat_id
        if chat_id is None and self.resume and self.store is not None:
            try:
                last = self.store.last_chat()
            except EzChatError as error:  # a damaged page: the file opened, the list did not
                self.notify(
                    f"The last chat could not be read, so this is a new one: {error}",
                    severity="error",
                )
            else:
                chat_id = last.id if last is not None else None
                if chat_id is None:
                    self.notify("No saved chat to resume yet; this is a new one.")
        if isinstance(self.screen, LoadingScreen):
            self.pop_screen()
        await self.chat_screen.begin(message.thread, chat_id)

    def _remember_theme(self, theme: Any) -> None:
        try:
            update_config(theme=theme.name)
        except (EzChatError, OSError) as error:
            self.notify(f"the theme could not be saved: {error}", severity="warning")

    # --- what every screen uses ----------------------------------------------------------------

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

    def copy_text(self, text: str) -> None:
        """Copy with OSC 52 (works over SSH in most terminals) and, where there is one, the
        system clipboard tool too, since some terminals ignore OSC 52."""
        from .clipboard import copy_with_system_tool

        self.copy_to_clipboard(text)
        tool = copy_with_system_tool(text)
        where = f" (and {tool})" if tool else " via the terminal (OSC 52)"
        self.notify(f"Copied {len(text)} characters{where}.")

    # --- leaving -------------------------------------------------------------------------------

    def _exit_on_signal(self, signum: int) -> None:
        self.exit(return_code=128 + signum)

    def on_unmount(self) -> None:
        """Stop a reply, keep the chat's cache for next time, and free the model."""
        screen = self.chat_screen
        if screen._reply is not None:
            screen._reply.cancel()
        # a load or a connection still under way stops at its next progress check, so that
        # quitting never waits on a server that does not answer
        self.workers.cancel_group(self, "model")
        # the worker ends within a token once cancelled; don't hang on a stuck one
        if not self.model_lock.acquire(timeout=10):
            return
        try:
            if screen.chat is not None:
                with contextlib.suppress(EzChatError, OSError):
                    screen.chat.save_state()
            if self.model is not None:
                self.model.unload()
        finally:
            self.model_lock.release()
            # the process may go on (a script, the tests) and open the chat again
            if screen.chat is not None:
                screen.chat.release()


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
