"""The chat list: reopen, rename, delete and export saved chats."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..errors import EzChatError
from ..safetext import visible
from ..settings import paths
from ..storage.markdown import markdown_from_export
from ..storage.store import ChatStore
from .dialogs import ConfirmScreen, TextEditScreen
from .footer import KeyFooter


def export_chat(store: ChatStore, chat_id: int, folder: Path | None = None) -> list[Path]:
    """Write chat ``chat_id`` as Markdown and JSON into ``folder`` (default: ``exports`` in the
    user data dir); returns the two paths."""
    return write_export(store.export_json(chat_id), f"chat-{chat_id}", folder)


def write_export(data: dict[str, Any], name: str, folder: Path | None = None) -> list[Path]:
    """Write ``export_json`` data as ``<name>-<title>.md`` and ``.json`` into ``folder``."""
    folder = folder or paths.data_dir() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", data["title"]).strip("-").lower()[:40] or "chat"
    stem = folder / f"{name}-{slug}"
    markdown = stem.with_suffix(".md")
    markdown.write_text(markdown_from_export(data), encoding="utf-8")
    written = stem.with_suffix(".json")
    written.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return [markdown, written]


class ChatListScreen(ModalScreen[int | None]):
    """Dismisses with the id of the chat to open, or None."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="chats.close"),
        Binding("r", "rename", "Rename", id="chats.rename"),
        Binding("delete,d", "delete", "Delete", id="chats.delete"),
        Binding("x", "export", "Export", id="chats.export"),
    ]

    def __init__(self, store: ChatStore, current: int | None) -> None:
        super().__init__()
        self.store = store
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Static("Saved chats  (Enter opens)", classes="dialog-title")
            yield DataTable(id="chat-table", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "Title", "Messages", "Updated", "Model")
        self.reload()
        table.focus()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        try:
            chats = self.store.chats()
        except EzChatError as error:
            self.notify(str(error), severity="error")
            return
        for chat in chats:
            # A DataTable reads a str cell as markup; titles and model names are outside text.
            table.add_row(
                "●" if chat.id == self.current else " ",
                Text(visible(chat.title)),
                str(chat.n_messages),
                f"{chat.updated:%Y-%m-%d %H:%M}",
                Text(visible(Path(chat.model).name)) if chat.model else "",
                key=str(chat.id),
            )
        if chats:
            table.move_cursor(row=min(row, len(chats) - 1))

    def _selected(self) -> int | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(int(event.row_key.value))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_rename(self) -> None:
        chat_id = self._selected()
        if chat_id is None:
            return

        def done(title: str | None) -> None:
            title = " ".join((title or "").split())
            if title:
                try:
                    self.store.rename_chat(chat_id, title)
                except EzChatError as error:
                    self.notify(str(error), severity="error")
                self.reload()

        current = self.store.chat(chat_id).title
        self.app.push_screen(TextEditScreen("Rename the chat", current), done)

    def action_delete(self) -> None:
        chat_id = self._selected()
        if chat_id is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                try:
                    self.store.delete_chat(chat_id)
                except EzChatError as error:
                    self.notify(str(error), severity="error")
                self.reload()

        title = self.store.chat(chat_id).title
        self.app.push_screen(ConfirmScreen(f"Delete the chat “{title}”?"), done)

    def action_export(self) -> None:
        chat_id = self._selected()
        if chat_id is None:
            return
        try:
            written = export_chat(self.store, chat_id)
        except (EzChatError, OSError) as error:
            self.notify(str(error), severity="error")
            return
        self.notify("Exported to " + " and ".join(str(p) for p in written), timeout=8)
