"""``ezchat config``: where the settings file is, what it holds, and changing one setting.
A value is checked when it is set (a preset name, a model file), not at the next start."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from ..backends.limits import ServerLimits
from ..chat import formats, samplers
from ..engine.gguf import read_gguf
from ..safetext import visible
from ..settings.config import Config, config_path, load_config, save_config
from .options import MIN_CONTEXT, fail
from .tables import show_value

config_app = typer.Typer(help="The settings file: where it is, what it holds, change it.")


def _plain_type(hint: Any) -> type:
    """``int | None`` -> int, ``dict[str, str]`` -> dict."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    return typing.get_origin(hint) or hint


_CONFIG_TYPES = {name: _plain_type(hint) for name, hint in typing.get_type_hints(Config).items()}


@config_app.command("path")
def config_path_command() -> None:
    """Print where the settings file is (it may not exist yet)."""
    print(config_path())


@config_app.command("show")
def configshow_value() -> None:
    """Print every setting; unset ones use the default."""
    config = load_config()
    for item in fields(Config):
        value = getattr(config, item.name)
        if item.name == "keymap":
            shown = ", ".join(f"{k}={v}" for k, v in value.items()) or "(default)"
        else:
            shown = "(default)" if value is None else show_value(value)
        print(visible(f"{item.name} = {shown}"))


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="a setting, e.g. sampler")],
    value: Annotated[str, typer.Argument(help="its new value")],
) -> None:
    """Change one setting in the settings file."""
    kind = _config_type(key)
    parsed = _parse_config_value(key, value, kind)
    _check_config_value(key, parsed)
    if key == "model":  # so a relative path means the same from any folder
        parsed = str(Path(parsed).expanduser().resolve())
    config = load_config()
    setattr(config, key, parsed)
    path = save_config(config)
    print(f"{key} = {show_value(parsed)}  ({path})")


@config_app.command("unset")
def config_unset(key: Annotated[str, typer.Argument(help="a setting, e.g. sampler")]) -> None:
    """Remove one setting from the settings file (back to the default)."""
    kind = _config_type(key)
    config = load_config()
    setattr(config, key, {} if kind is dict else None)
    save_config(config)
    print(f"{key} = (default)")


def _config_type(key: str) -> type:
    if key not in _CONFIG_TYPES:
        raise fail(f"unknown setting {key!r}; choose one of {', '.join(_CONFIG_TYPES)}")
    return _CONFIG_TYPES[key]


def _parse_config_value(key: str, value: str, kind: type) -> Any:
    if kind is dict:
        raise fail(f"{key} is a table; edit it in {config_path()}")
    if kind is bool:
        lowered = value.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise fail(f"{key} must be true or false, got {value!r}")
    if kind is int:
        try:
            return int(value)
        except ValueError:
            raise fail(f"{key} must be a whole number, got {value!r}") from None
    if kind is float:  # the server limits: positive, finite
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and number > 0):
            raise fail(f"{key} must be a positive number, got {value!r}")
        return number
    return value


_LIMIT_KEYS = {
    "server_timeout": "timeout",
    "server_idle_timeout": "idle_timeout",
    "server_max_read_mb": "max_read_mb",
}


def _check_config_value(key: str, value: Any) -> None:
    """Names and paths are checked now rather than at the next start."""
    if key == "sampler":
        samplers.load(value)
    elif key == "format" and value.lower() != "auto":
        formats.load(value)
    elif key == "model":
        read_gguf(value)
    elif key in _LIMIT_KEYS:  # each also has a most: past it the clock or a count overflows
        ServerLimits.of(**{_LIMIT_KEYS[key]: value})
    elif key == "context_length" and value < MIN_CONTEXT:
        raise fail(f"context_length must be at least {MIN_CONTEXT}, got {value}")
