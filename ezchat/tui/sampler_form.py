"""A form with every sampler value. Saving checks each value's type and range (the table in
``ezchat.chat.samplers``) and names the first bad one; nothing changes until all are good."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..chat.samplers import FieldInfo, SamplerSettings, field_info, parse_value
from ..safetext import visible


def field_text(value: object) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)


def range_text(info: FieldInfo) -> str:
    if info.low is not None and info.high is not None:
        return f"{info.low:g} to {info.high:g}"
    if info.low is not None:
        return f"≥ {info.low:g}"
    return ""


class SamplerFormScreen(ModalScreen[SamplerSettings | None]):
    """Dismisses with the new SamplerSettings (named "custom" when changed) or None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="sampler.save"),
        Binding("escape", "cancel", "Cancel", id="sampler.cancel"),
    ]

    def __init__(self, sampler: SamplerSettings) -> None:
        super().__init__()
        self.sampler = sampler
        self.fields = field_info()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            # a preset's name is its file's; errors quote what was typed: plain, never markup
            yield Static(Content(visible(f"Sampler: {self.sampler.name}")), classes="dialog-title")
            with VerticalScroll(id="sampler-fields"):
                for name, info in self.fields.items():
                    with Horizontal(classes="sampler-row"):
                        yield Label(name, classes="sampler-name")
                        yield Input(
                            field_text(getattr(self.sampler, name)),
                            id=f"field-{name}",
                            classes="sampler-input",
                        )
                        hint = range_text(info)
                        yield Static(
                            f"{info.help}" + (f"  [{hint}]" if hint else ""),
                            classes="sampler-help",
                            markup=False,
                        )
            yield Static("", id="sampler-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(".sampler-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def _fail(self, name: str, problem: str) -> None:
        for field in self.query(".sampler-input"):
            field.remove_class("-invalid")
        field = self.query_one(f"#field-{name}", Input)
        field.add_class("-invalid")
        field.focus()
        self.query_one("#sampler-error", Static).update(Content(visible(problem)))

    def action_save(self) -> None:
        changes: dict[str, object] = {}
        for name in self.fields:
            text = self.query_one(f"#field-{name}", Input).value
            try:
                value = parse_value(name, text)
            except ValueError as error:
                self._fail(name, str(error))
                return
            if value != getattr(self.sampler, name):
                changes[name] = value
        if not changes:
            self.dismiss(None)
            return
        try:
            settings = self.sampler.replace(**changes)
        except ValueError as error:
            bad = next((name for name in changes if str(error).startswith(name + " ")), None)
            self._fail(bad or next(iter(changes)), str(error))
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.dismiss(None)
