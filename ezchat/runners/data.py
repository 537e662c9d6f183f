"""Reading input/output examples and prompt records from JSONL, CSV and data frames."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import utf8
from ..errors import InvalidTextError, UserFileError
from ..settings.userfiles import read_user_bytes, read_user_text


@dataclass(frozen=True, slots=True)
class Example:
    """An input and, when known, the output the model should give for it."""

    input: str
    output: str | None = None


def read_jsonl(path: str | Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """The JSON objects of a JSONL file with their line numbers, and one message per line that
    is not a JSON object of text (blank lines are ignored). Each line is decoded alone, so a
    line that is not UTF-8 is one bad record, not a bad file."""
    path = Path(path)
    data = read_user_bytes(path, "a .jsonl file")
    records: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    # Lines end at \n only: str.splitlines() would also split a JSON string holding U+2028.
    for number, raw in enumerate(data.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            line = utf8.decode(raw, where)
        except InvalidTextError as exc:
            problems.append(str(exc))
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg})")
            continue
        except RecursionError:
            problems.append(f"{where}: the JSON nests too deeply to read")
            continue
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a JSON object, got {type(value).__name__}")
            continue
        bad_text = utf8.json_problem(value)
        if bad_text:
            problems.append(f"{where}: in a JSON string, {bad_text}")
            continue
        records.append((number, value))
    return records, problems


def _pair_keys(keys: Sequence[str] | None) -> tuple[str, str]:
    if keys is None:
        return "input", "output"
    if isinstance(keys, str) or len(keys) not in (1, 2):
        raise ValueError("keys/columns must name the input and output fields, e.g. ['q', 'a']")
    return keys[0], keys[1] if len(keys) == 2 else "output"


def examples_from(
    data: Any, keys: Sequence[str] | None = None, where: str = "data"
) -> list[Example]:
    """Examples from a string, an (input, output) pair, a dict with input/output keys, or a
    list of these."""
    input_key, output_key = _pair_keys(keys)

    def one(item: Any, label: str) -> Example:
        if isinstance(item, Example):
            return item
        if isinstance(item, str):
            return Example(item)
        if isinstance(item, Mapping):
            if input_key not in item:
                raise UserFileError(f"{label}: no {input_key!r} key; it has {', '.join(item)}")
            output = item.get(output_key)
            return Example(str(item[input_key]), None if output is None else str(output))
        if isinstance(item, Sequence) and len(item) == 2:
            return Example(str(item[0]), None if item[1] is None else str(item[1]))
        raise TypeError(
            f"{label}: expected a string, an (input, output) pair or a dict with "
            f"{input_key!r}/{output_key!r}, not {type(item).__name__}"
        )

    if isinstance(data, str | Mapping | Example) or (
        isinstance(data, tuple) and len(data) == 2 and all(isinstance(x, str) for x in data)
    ):
        return [one(data, where)]
    if not isinstance(data, Iterable):
        raise TypeError(f"{where}: expected examples, not {type(data).__name__}")
    return [one(item, f"{where}[{i}]") for i, item in enumerate(data)]


def examples_from_jsonl(path: str | Path, keys: Sequence[str] | None = None) -> list[Example]:
    records, problems = read_jsonl(path)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserFileError(f"{problems[0]}{more}; fix the lines and load again")
    return [examples_from(record, keys, f"{path}:{number}")[0] for number, record in records]


def examples_from_csv(path: str | Path, columns: Sequence[str] | None = None) -> list[Example]:
    path = Path(path)
    input_key, output_key = _pair_keys(columns)
    text = read_user_text(path, "a .csv file", keep_newlines=True)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or input_key not in reader.fieldnames:
        raise UserFileError(
            f"{path}: no {input_key!r} column; the header is "
            f"{', '.join(reader.fieldnames or []) or '(empty)'}"
        )
    rows = list(reader)
    return [
        examples_from(row, (input_key, output_key), f"{path}:{i + 2}")[0]
        for i, row in enumerate(rows)
    ]


def examples_from_dataframe(df: Any, columns: Sequence[str] | None = None) -> list[Example]:
    """Examples from a pandas DataFrame (anything with ``to_dict("records")``)."""
    if not hasattr(df, "to_dict"):
        raise TypeError(f"expected a pandas DataFrame, not {type(df).__name__}")
    return examples_from(df.to_dict("records"), columns, "dataframe")
