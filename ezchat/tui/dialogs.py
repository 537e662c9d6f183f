"""Small modal screens: edit a text, confirm an action, pick a name from a list.

Their titles and choices quote chat titles, file names and preset descriptions, so every text
is shown through ``visible`` as plain Content, never as markup."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from ..safetext import visible
from .textarea import VisibleTextArea


def plain(text: str) -> Content:
    """Outside text for a Static: controls made visible, never read as markup."""
    return Content(visible(text))


class TextEditScreen(ModalScreen[str | None]):
    """Edit ``text``; dismisses with the new text (ctrl+s) or None (escape)."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="dialog.save"),
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
    ]

    def __init__(self, title: str, text: str = "", hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.initial_text = text
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.title_text), classes="dialog-title")
            if self.hint:
                yield Static(plain(self.hint), classes="dialog-hint")
            yield VisibleTextArea(self.initial_text, soft_wrap=True, id="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        area = self.query_one("#dialog-text", VisibleTextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def action_save(self) -> None:
        self.dismiss(self.query_one("#dialog-text", VisibleTextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True for yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="dialog.yes"),
        Binding("n,escape", "answer(False)", "No", id="dialog.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -small"):
            yield Static(plain(self.question), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PickerScreen(ModalScreen[str | None]):
    """Choose one of ``choices`` (name, description); dismisses with the name or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]], current: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        options = []
        for name, description in self.choices:
            mark = "● " if name == self.current else "  "
            label = Content.assemble(
                mark + visible(name), (f"  {visible(description)}" if description else "", "dim")
            )
            options.append(Option(label, id=name))
        with Vertical(classes="dialog"):
            yield Static(plain(self.title_text), classes="dialog-title")
            yield OptionList(*options, id="picker-list")

    def on_mount(self) -> None:
        picker = self.query_one("#picker-list", OptionList)
        names = [name for name, _ in self.choices]
        if self.current in names:
            picker.highlighted = names.index(self.current)
        picker.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
