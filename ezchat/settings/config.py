"""The user's settings file: ``config.toml`` in the config dir.

One small TOML file holds the choices a user makes once (default model, format, sampler,
theme, key bindings). It is read with the same loader as formats and presets, so a mistake
is reported with its file, line and key.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UserFileError
from . import paths
from .userfiles import MOST_TOML_BYTES, check_keys, read_toml, where

CONFIG_FILE = "config.toml"
_POSITIVE = ("server_timeout", "server_idle_timeout", "server_max_read_mb")
# The longest message the app renders as Markdown, in characters; a longer one is shown as
# plain text (Textual's Markdown renders a whole message at once: a 10,000-row table took
# minutes). ``max_markdown_chars`` in the file, ``--max-markdown-chars`` for the app.
MAX_MARKDOWN_CHARS = 20_000

_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "format": str,
    "sampler": str,
    "system_prompt": str,
    "theme": str,
    "context_length": int,
    "n_gpu_layers": int,
    "flash_attn": bool,
    "n_threads": int,
    "server": str,
    "server_timeout": (int, float),
    "server_idle_timeout": (int, float),
    "server_max_read_mb": (int, float),
    "max_markdown_chars": int,
    "template_timeout": (int, float),
    "template_memory_mb": (int, float),
    "keymap": dict,
    "loom": dict,
}
# [loom] grow: how many replies the grow action makes at once (the app's ctrl+o, the REPL's !alt)
DEFAULT_GROW = 4
MAX_GROW = 16


@dataclass(slots=True)
class Config:
    model: str | None = None
    format: str | None = None  # None: "auto", the model's own template
    sampler: str | None = None  # None: the default preset (chat/samplers.py)
    system_prompt: str | None = None
    theme: str | None = None
    context_length: int | None = None
    n_gpu_layers: int | None = None
    flash_attn: bool | None = None
    n_threads: int | None = None
    server: str | None = None
    # a server's limits, in seconds and MiB (ezchat/backends/limits.py has the defaults)
    server_timeout: float | None = None
    server_idle_timeout: float | None = None
    server_max_read_mb: float | None = None
    max_markdown_chars: int | None = None  # None: MAX_MARKDOWN_CHARS
    template_timeout: float | None = None  # None: jinja_render.DEFAULT_RENDER_SECONDS
    template_memory_mb: float | None = None  # None: jinja_render.DEFAULT_RENDER_MEMORY_MB
    # action id -> key(s), e.g. {"stop" = "escape", "reroll" = "ctrl+r"}
    keymap: dict[str, str] = field(default_factory=dict)
    # the loom's settings: {"grow" = 4}
    loom: dict[str, int] = field(default_factory=dict)

    @property
    def grow(self) -> int:
        """How many replies one grow makes ([loom] grow, else DEFAULT_GROW)."""
        return int(self.loom.get("grow", DEFAULT_GROW))


def config_path() -> Path:
    return paths.config_dir() / CONFIG_FILE


def load_config(path: Path | None = None) -> Config:
    """The settings, or defaults when the file does not exist yet."""
    path = path or config_path()
    if not path.exists():
        return Config()
    data = read_toml(path)
    check_keys(data, path, _TYPES)
    for action, keys in data.get("keymap", {}).items():
        if not isinstance(keys, str):
            raise UserFileError(
                f"{where(path, action)}: [keymap] {action} must be a string of keys like "
                f'"ctrl+r" (several: "ctrl+r,f6"), not {type(keys).__name__}'
            )
    _check_loom(path, data.get("loom", {}))
    for key in _POSITIVE:
        value = data.get(key)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserFileError(f"{where(path, key)}: {key} must be a positive number, not {value}")
    limit = data.get("max_markdown_chars")
    if limit is not None and limit < 0:
        raise UserFileError(
            f"{where(path, 'max_markdown_chars')}: max_markdown_chars must be 0 or more "
            f"(0 shows every message as plain text), not {limit}"
        )
    timeout = data.get("template_timeout")
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if timeout is not None and not (number and 0 < timeout < 1e9):
        raise UserFileError(
            f"{where(path, 'template_timeout')}: template_timeout is the most seconds one "
            f"render of a chat template may take, a number above 0, not {timeout!r}"
        )
    memory = data.get("template_memory_mb")
    number = isinstance(memory, int | float) and not isinstance(memory, bool)
    if memory is not None and not (number and 0 < memory < 1e9):
        raise UserFileError(
            f"{where(path, 'template_memory_mb')}: template_memory_mb is the most MiB one "
            f"render of a chat template may take, a number above 0, not {memory!r}"
        )
    return Config(**data)


def _check_loom(path: Path, loom: dict[str, Any]) -> None:
    for key, value in loom.items():
        if key != "grow":
            raise UserFileError(f"{where(path, key)}: [loom] has no setting {key!r}; it has grow")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GROW:
            raise UserFileError(
                f"{where(path, key)}: [loom] grow is how many replies to grow at once, a whole "
                f"number from 1 to {MAX_GROW}, not {value!r}"
            )


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write the settings that are set; unset ones are left out of the file."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {k: v for k, v in asdict(config).items() if v not in (None, {})}
    text = _to_toml(values)
    if len(text.encode("utf-8", "surrogatepass")) > MOST_TOML_BYTES:  # it would not be read
        raise UserFileError(
            f"{path}: the settings would take more than {MOST_TOML_BYTES} bytes; shorten the "
            "longest value (a system prompt that long belongs in a file of its own)"
        )
    path.write_text(text, encoding="utf-8")
    return path


def update_config(**changes: Any) -> Config:
    """Change some settings and save, keeping the rest of the file's values."""
    config = load_config()
    known = {f.name for f in fields(Config)}
    for key, value in changes.items():
        if key not in known:
            raise KeyError(key)
        setattr(config, key, value)
    save_config(config)
    return config


def _to_toml(values: dict[str, Any]) -> str:
    lines = ["# ezchat settings; see `ezchat config path`", ""]
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    for key, value in values.items():
        if key not in tables:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables.items():
        lines += ["", f"[{name}]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    bare = key.isascii() and key.replace("_", "").replace("-", "").isalnum()
    return key if bare else _toml_value(key)


# TOML's basic strings may hold no control character but tab: each is written as an escape,
# so a value with one (a pasted system prompt) never makes the file unreadable.
_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_TOML_ESCAPED = re.compile(r'[\\"\x00-\x08\x0a-\x1f\x7f]')


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = _TOML_ESCAPED.sub(lambda m: _TOML_ESCAPES.get(m[0], f"\\u{ord(m[0]):04X}"), str(value))
    return f'"{text}"'
