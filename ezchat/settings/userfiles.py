"""The one loader for the TOML files that users edit (formats, sampler presets, config).

Shipped files come from ``paths.shipped_dir(kind)``; files of the same kind in the user's config
dir add new names or override shipped ones. Every mistake is reported with the file, the line
and the key, so the user can go straight to it.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError, UserFileError
from . import paths

# The most a format, preset or config file may hold: each is a few KiB (a config with a long
# system prompt more); a file past this is refused before it is read.
MOST_TOML_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class UserFile:
    name: str
    path: Path
    source: str  # "shipped" or "user"


def discover(kind: str) -> dict[str, UserFile]:
    """All files of a kind by name (the file's stem), user files overriding shipped ones."""
    found: dict[str, UserFile] = {}
    for source, folder in (("shipped", paths.shipped_dir(kind)), ("user", paths.user_dir(kind))):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found[path.stem] = UserFile(path.stem, path, source)
    return found


def find(kind: str, name: str, what: str) -> UserFile:
    """The file for ``name``; an unknown name lists the ones that exist."""
    files = discover(kind)
    if name in files:
        return files[name]
    folded = {key.lower(): key for key in files}
    if name.lower() in folded:
        return files[folded[name.lower()]]
    known = ", ".join(sorted(files)) or "(none)"
    raise UnknownNameError(
        f"unknown {what} {name!r}: choose one of {known}, "
        f"or add {name}.toml to {paths.user_dir(kind)}"
    )


def read_user_bytes(path: Path, what: str = "a file") -> bytes:
    """The bytes of a file the user named; a ``UserFileError`` of one line (naming the file
    and the fix) when it cannot be read. ``what`` is the kind of file the path should name."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserFileError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise UserFileError(f"{path}: is a folder; give the path of {what}") from None
    except OSError as exc:
        raise UserFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def read_user_text(
    path: Path, what: str = "a file", save_as: str = "UTF-8", keep_newlines: bool = False
) -> str:
    """The text of a file the user named, as ``read_user_bytes`` reads it, decoded as UTF-8.
    Line ends become ``\n`` as ``Path.read_text`` makes them, unless ``keep_newlines`` (the
    csv module reads them itself)."""
    data = read_user_bytes(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserFileError(f"{path}: not UTF-8 text; save it as {save_as}") from None
    return text if keep_newlines else text.replace("\r\n", "\n").replace("\r", "\n")


def file_stamp(path: Path) -> int:
    """When the settings file ``path`` last changed (a cache key), once it is known to be a
    regular file ezchat will read: a dangling link, a FIFO, a device or a file past
    MOST_TOML_BYTES is a ``UserFileError`` naming it, not a hang or a flood."""
    try:
        found = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise UserFileError(
                f"{path}: no such file (a link to a file that does not exist); remove it or "
                "fix the link"
            ) from None
        raise UserFileError(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise UserFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    _check_regular(path, found)
    return found.st_mtime_ns


def _check_regular(path: Path, found: os.stat_result) -> None:
    if stat.S_ISDIR(found.st_mode):
        raise UserFileError(f"{path}: is a folder; give the path of a .toml file")
    if not stat.S_ISREG(found.st_mode):
        raise UserFileError(
            f"{path}: not a regular file (a FIFO or a device); replace it with a .toml file"
        )
    if found.st_size > MOST_TOML_BYTES:
        raise UserFileError(
            f"{path}: {found.st_size} bytes, more than a settings file holds (at most "
            f"{MOST_TOML_BYTES}); is it the right file?"
        )


def _read_settings_bytes(path: Path) -> bytes:
    """The bytes of a settings file, read only if it is a regular file of at most
    MOST_TOML_BYTES; opened without blocking, so a FIFO put in its place cannot hang."""
    file_stamp(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UserFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    with os.fdopen(descriptor, "rb") as file:
        _check_regular(path, os.fstat(descriptor))  # what was opened, if it changed since
        data = file.read(MOST_TOML_BYTES + 1)
    if len(data) > MOST_TOML_BYTES:
        raise UserFileError(f"{path}: grew past {MOST_TOML_BYTES} bytes while read")
    return data


def read_settings_text(path: Path) -> str:
    """A settings file's text (a format, sampler preset or the config), bounded as
    ``_read_settings_bytes`` reads it."""
    try:
        text = _read_settings_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise UserFileError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_toml(path: Path) -> dict[str, Any]:
    text = read_settings_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserFileError(f"{path}: malformed TOML: {exc}") from None


def line_of_key(path: Path, key: str) -> int | None:
    """The 1-based line where ``key`` is assigned, for error messages."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(lines, start=1):
        if pattern.match(line):
            return number
    return None


def where(path: Path, key: str) -> str:
    line = line_of_key(path, key)
    return f"{path}:{line}" if line else str(path)


def check_keys(data: dict[str, Any], path: Path, valid: dict[str, type | tuple[type, ...]]) -> None:
    """Raise on an unknown key or a value of the wrong type, naming file, line and key."""
    for key, value in data.items():
        if key not in valid:
            raise UserFileError(
                f"{where(path, key)}: unknown key {key!r}; valid keys are {', '.join(valid)}"
            )
        expected = valid[key]
        # bool is an int in Python; a TOML `true` is never a valid number here
        if isinstance(value, bool) and bool not in _as_tuple(expected):
            ok = False
        else:
            ok = isinstance(value, expected)
        if not ok:
            names = " or ".join(t.__name__ for t in _as_tuple(expected))
            raise UserFileError(
                f"{where(path, key)}: key {key!r} must be {names}, not {type(value).__name__}"
            )


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)
