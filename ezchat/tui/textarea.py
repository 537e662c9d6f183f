"""``VisibleTextArea``: a TextArea that draws terminal controls as pictures.

The input box and the edit dialogs hold text from outside ezchat (a reopened chat's messages
in the input's history, a message being edited, a pasted text). TextArea would write an ESC in
it to the terminal as it is; this one draws each line through ``visible``, while the document
(what is sent or saved) keeps the raw text. ``visible`` replaces one character with one, so
the cursor, the selection and the highlighting stay where they were.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import TextArea

from ..safetext import visible


class VisibleTextArea(TextArea):
    def get_line(self, line_index: int) -> Text:
        return Text(visible(self.document.get_line(line_index)), end="", no_wrap=True)
