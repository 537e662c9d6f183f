"""Which messages the conversation shows as Markdown, and why the others are plain text.

Textual's Markdown widget builds widgets for the whole text at once, and a table costs far
more than its characters: a 20,000-character table (about 500 rows) took 25 s to open, where
20,000 characters of paragraphs take a fraction of a second. So two limits: the app's
``max_markdown_chars`` for any message, and ``MAX_MARKDOWN_TABLE_ROWS`` for the rows of its
tables. A message over either is shown as plain text (``PlainBody``): the Markdown source, its
table rows as ``| a | b |`` lines, drawn only where it is on screen.
"""

from __future__ import annotations

import re

# About 0.2 s to open in Textual's Markdown on a slow CPU (2 cores, measured with
# benchmarks/open_chat.py); the table tests depend on nothing finer than "over" and "under".
MAX_MARKDOWN_TABLE_ROWS = 100

# A Markdown table's delimiter row: | --- | :---: | (the leading and trailing pipes optional)
_DELIMITER_ROW = re.compile(r"^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$", re.M)
_PIPE_LINE = re.compile(r"^[^\n]*\|[^\n]*$", re.M)


def table_rows(text: str) -> int:
    """About how many table rows ``text`` holds: the lines with a ``|`` after its first table's
    delimiter row (0 when it has no table). A pass over the text; no Markdown parsing."""
    delimiter = _DELIMITER_ROW.search(text)
    if delimiter is None:
        return 0
    return len(_PIPE_LINE.findall(text, delimiter.end()))


def plain_reason(text: str, char_limit: int) -> str:
    """Why ``text`` is shown as plain text ('' when it is shown as Markdown)."""
    if len(text) > char_limit:
        return f"{len(text):,} characters > max_markdown_chars {char_limit:,}"
    rows = table_rows(text)
    if rows > MAX_MARKDOWN_TABLE_ROWS:
        return f"a table of {rows:,} rows > {MAX_MARKDOWN_TABLE_ROWS} rows"
    return ""
