"""Prompt formats: how a conversation becomes the text a model was trained on.

A format is either a set of prefixes and suffixes around each message (easy-llama's dicts, and
the TOML files in ``formats/``) or a Jinja chat template (a GGUF's ``tokenizer.chat_template``
or a TOML file's ``template``). Both render the same way and both split the prompt into
segments that tell the tokenizer which text came from the user, so that a user who types
``<|im_end|>`` gets those characters and not the end-of-turn token.

Shipped formats live in ``formats/*.toml``; files of the same name in the user's config dir
override them. ``ezchat.chat.formats.chatml`` and friends load by attribute, as in easy-llama.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from ..errors import TemplateLimitError, UnknownNameError, UserFileError
from ..safetext import one_line
from ..settings import paths, userfiles
from ..settings.userfiles import UserFile
from . import jinja_render
from .jinja_render import ChatTemplateError  # noqa: F401  (its old home; still importable)
from .jinja_split import TURN_ENDS, derive_parts, split_render
from .roles import TEMPLATE_NAME_OF

KIND = "formats"

FIELDS = (
    "system_prefix",
    "system_prompt",
    "system_suffix",
    "user_prefix",
    "user_suffix",
    "bot_prefix",
    "bot_suffix",
    "stops",
)
_TEXT_FIELDS = FIELDS[:-1]
_FILE_KEYS: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(_TEXT_FIELDS, str),
    "stops": list,
    "template": str,
    "bos_token": str,
    "eos_token": str,
    "system_in_user": bool,
    "system_separator": str,
    "description": str,
    # reasoning markers (ezchat.chat.reasoning detects them when unset) and whether later prompts
    # keep a reply's reasoning
    "reasoning_start": str,
    "reasoning_end": str,
    "keep_reasoning": bool,
}
_REASONING_KEYS = ("reasoning_start", "reasoning_end", "keep_reasoning")
# With a template the turns come from the template; only these may sit beside it.
_TEMPLATE_KEYS = {
    "template",
    "system_prompt",
    "stops",
    "bos_token",
    "eos_token",
    "description",
    *_REASONING_KEYS,
}

Message = Mapping[str, Any]


class Format(dict):
    """A prompt format: easy-llama's dict of prefixes and suffixes, plus how to render it."""

    reasoning_start = ""
    reasoning_end = ""
    keep_reasoning = False
    # Extra variables for a Jinja template (a chat's enable_thinking switch and its kin).
    template_variables: Mapping[str, Any] = {}

    def __init__(
        self,
        fields: Mapping[str, Any],
        *,
        name: str,
        source: str,
        template: str | None = None,
        bos_token: str = "",
        eos_token: str = "",
        system_in_user: bool = False,
        system_separator: str = "\n\n",
        description: str = "",
    ) -> None:
        super().__init__({key: fields.get(key, "") for key in _TEXT_FIELDS})
        self["stops"] = list(fields.get("stops", []))
        self.name = name
        self.source = source
        self.template = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.system_in_user = system_in_user
        self.system_separator = system_separator
        self.description = description

    def __repr__(self) -> str:
        return f"<Format {self.name!r} from {self.source}>"

    @property
    def is_jinja(self) -> bool:
        return self.template is not None

    @property
    def stops(self) -> list[str]:
        return self["stops"]

    @property
    def system_prompt(self) -> str:
        return self["system_prompt"]

    def render(
        self,
        messages: Iterable[Message],
        add_generation_prompt: bool = True,
        tools: list[Mapping[str, Any]] | None = None,
    ) -> str:
        return "".join(text for text, _ in self.segments(messages, add_generation_prompt, tools))

    def segments(
        self,
        messages: Iterable[Message],
        add_generation_prompt: bool = True,
        tools: list[Mapping[str, Any]] | None = None,
    ) -> list[tuple[str, bool]]:
        """The prompt as ``(text, is_content)`` pieces; content is tokenized without specials.

        ``tools`` (OpenAI-style function descriptions) reach a Jinja template as llama.cpp
        passes them; a format of prefixes and suffixes has no place for them."""
        if self.is_jinja:
            return self._jinja_segments(_jinja_messages(messages), add_generation_prompt, tools)
        turns = _normalize(messages)
        if self.system_prompt and not any(role == "system" for role, _ in turns):
            # Published templates (Qwen, SmolLM2) add their default the same way.
            turns.insert(0, ("system", self.system_prompt))
        if self.system_in_user:
            turns = _fold_system(turns, self.system_separator)
        pieces: list[tuple[str, bool]] = []
        for role, content in turns:
            prefix, suffix = self.message_parts(role)
            pieces += [(prefix, False), (content, True), (suffix, False)]
        if add_generation_prompt:
            pieces.append((self["bot_prefix"], False))
        return [piece for piece in pieces if piece[0]]

    def message_parts(self, role: str) -> tuple[str, str]:
        """The text before and after a message of ``role``."""
        key = "bot" if _role(role) == "assistant" else _role(role)
        return self[f"{key}_prefix"], self[f"{key}_suffix"]

    @property
    def _what(self) -> str:
        return f"format {self.name!r} from {self.source}"

    def _render_template(
        self,
        messages: list[dict[str, Any]],
        add_generation_prompt: bool,
        tools: list[Mapping[str, Any]] | None = None,
    ) -> str:
        assert self.template is not None
        # bos_token is set only where the model adds BOS itself; the template's copy would
        # make two, so it is stripped as llama.cpp's runtime strips it.
        return jinja_render.render(
            self.template,
            messages,
            variables=self.template_variables,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            add_generation_prompt=add_generation_prompt,
            tools=tools,
            strip_bos=bool(self.bos_token),
            what=self._what,
        )

    def _jinja_segments(
        self,
        messages: list[dict[str, Any]],
        add_generation_prompt: bool,
        tools: list[Mapping[str, Any]] | None,
    ) -> list[tuple[str, bool]]:
        try:
            return split_render(self, messages, add_generation_prompt, tools)
        except TemplateLimitError:
            raise  # a runaway template is refused, not papered over
        except Exception as error:  # a template can fail in any way; the chat must go on
            warnings.warn(
                one_line(f"{self._what}: the chat template failed ({error}); using chatml instead"),
                stacklevel=3,
            )
        plain = [m for m in messages if m["role"] in TEMPLATE_NAME_OF]
        return _fallback().segments(plain, add_generation_prompt)


def _role(role: str) -> str:
    try:
        return TEMPLATE_NAME_OF[role.lower()]
    except KeyError:
        raise ValueError(f"unknown role {role!r}: use system, user or assistant") from None


def _normalize(messages: Iterable[Message]) -> list[tuple[str, str]]:
    turns = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            raise TypeError(f"message content must be str, not {type(content).__name__}")
        turns.append((_role(message["role"]), content))
    return turns


def _jinja_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Messages for a template: any role (tool, tool-call roles), and their other fields
    (``tool_calls``, ``tool_call_id``, ``name``) passed through as llama.cpp passes them."""
    prepared = []
    for message in messages:
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError(f"message content must be str, not {type(content).__name__}")
        role = str(message["role"])
        prepared.append(
            {**message, "role": TEMPLATE_NAME_OF.get(role.lower(), role), "content": content}
        )
    return prepared


def _fold_system(turns: list[tuple[str, str]], separator: str) -> list[tuple[str, str]]:
    """Put system text at the head of the next user message (a format's ``system_in_user``)."""
    folded: list[tuple[str, str]] = []
    pending: list[str] = []
    for role, content in turns:
        if role == "system":
            pending.append(content)
        elif role == "user" and pending:
            folded.append(("user", separator.join([*pending, content])))
            pending = []
        else:
            folded.append((role, content))
    if pending:
        folded.append(("user", separator.join(pending)))
    return folded


# --- Jinja ------------------------------------------------------------------------------------


def from_jinja(
    template: str,
    bos_token: str = "",
    eos_token: str = "",
    name: str = "jinja",
    *,
    source: str = "inline",
) -> Format:
    """A format that renders a Jinja chat template; its dict keys are derived best-effort."""
    fmt = Format(
        {}, name=name, source=source, template=template, bos_token=bos_token, eos_token=eos_token
    )
    try:
        jinja_render.compile_template(template, fmt._what)
    except jinja2.TemplateSyntaxError as exc:
        raise UserFileError(f"{source}: chat template line {exc.lineno}: {exc.message}") from None
    # Probing the template runs it: a runaway one is refused here, at load, in one line.
    jinja_render.capabilities(template, fmt._what)
    fmt.update(derive_parts(fmt))
    stops = [eos_token] if eos_token else []
    fmt["stops"] = stops + [end for end in TURN_ENDS if end in template and end not in stops]
    return fmt


# --- loading ----------------------------------------------------------------------------------


def available() -> list[str]:
    return sorted(userfiles.discover(KIND))


def sources() -> dict[str, UserFile]:
    return userfiles.discover(KIND)


def load(name: str) -> Format:
    """The shipped or user format ``name`` (case-insensitive); user files win."""
    found = userfiles.find(KIND, name, "format")
    return _build(_read(found.path, userfiles.file_stamp(found.path)), found.name, found.path)


@functools.lru_cache(maxsize=128)
def _read(path: Path, mtime_ns: int) -> dict[str, Any]:
    # mtime_ns is part of the cache key, so an edited file is read again.
    data = userfiles.read_toml(path)
    userfiles.check_keys(data, path, _FILE_KEYS)
    if "template" in data:
        for key in data.keys() - _TEMPLATE_KEYS:
            raise UserFileError(
                f"{userfiles.where(path, key)}: {key!r} comes from the template in this file; "
                "remove it or remove the template"
            )
    for stop in data.get("stops", []):
        if not isinstance(stop, str):
            raise UserFileError(f"{userfiles.where(path, 'stops')}: stops must be strings")
    return data


def _build(data: Mapping[str, Any], name: str, path: Path | str) -> Format:
    fmt = _build_parts(data, name, path)
    for key in _REASONING_KEYS:
        if key in data:
            setattr(fmt, key, data[key])
    return fmt


def _build_parts(data: Mapping[str, Any], name: str, path: Path | str) -> Format:
    source = str(path)
    if "template" in data:
        bos, eos = data.get("bos_token", ""), data.get("eos_token", "")
        fmt = from_jinja(data["template"], bos, eos, name, source=source)
        fmt["system_prompt"] = data.get("system_prompt", "")
        if "stops" in data:
            fmt["stops"] = list(data["stops"])
        fmt.description = data.get("description", "")
        return fmt
    return Format(
        data,
        name=name,
        source=source,
        bos_token=data.get("bos_token", ""),
        eos_token=data.get("eos_token", ""),
        system_in_user=data.get("system_in_user", False),
        system_separator=data.get("system_separator", "\n\n"),
        description=data.get("description", ""),
    )


def _fallback() -> Format:
    # The shipped chatml, not load("chatml"): a user's broken chatml.toml must not recurse.
    path = paths.shipped_dir(KIND) / "chatml.toml"
    return _build(_read(path, path.stat().st_mtime_ns), "chatml", path)


def from_dict(data: Mapping[str, Any], name: str = "inline") -> Format:
    """A format from a dict such as easy-llama users write; unknown keys are refused."""
    for key, value in data.items():
        if key not in _FILE_KEYS:
            raise ValueError(f"unknown format key {key!r}; valid keys are {', '.join(_FILE_KEYS)}")
        if not isinstance(value, _FILE_KEYS[key]):
            raise TypeError(f"format key {key!r} cannot be a {type(value).__name__}")
    return _build(data, name, "inline")


def from_metadata(metadata: Mapping[str, str], bos_token: str, eos_token: str) -> Format | None:
    """The ``auto`` format: the chat template a GGUF carries, or None when it has none."""
    template = metadata.get("tokenizer.chat_template")
    if not template:
        return None
    return from_jinja(template, bos_token, eos_token, "auto", source="model metadata")


def coerce(fmt: Format | Mapping[str, Any] | str) -> Format:
    """A Format from a Format, an easy-llama dict or a format name."""
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, Mapping):
        return from_dict(fmt)
    if isinstance(fmt, str):
        if fmt.lower() == "auto":
            raise UnknownNameError(
                "the 'auto' format is the chat template inside a model file, so it needs a "
                "model: pass it to a Thread with the model, or name a format"
            )
        return load(fmt)
    raise TypeError(f"a format is a Format, a dict or a name, not {type(fmt).__name__}")


def __getattr__(name: str) -> Format:
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return load(name)
    except UnknownNameError as exc:
        raise AttributeError(str(exc)) from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(available()))
