"""What ``auto`` means for a model, and whether a format suits the model's vocabulary.

``auto`` is the chat template a GGUF carries. A file without one (a base model, or a
conversion that lost its template) gets the shipped format of its family, found in one table
from the model's name, architecture or vocabulary, and the interfaces say which and why. Any
format whose markers (``<|im_start|>``, ``<start_of_turn>``, ...) are not single special tokens
of the model is flagged: the model would read them as plain text it was never trained on.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import formats

if TYPE_CHECKING:
    from ..backends.base import Backend
    from .formats import Format

# One table: (what is matched, pattern, shipped format). The first matching row wins. Names come
# first because they settle architectures many families share (a DeepSeek-R1 distill is
# "qwen2" or "llama", Phi-4 is "phi3"); then the architecture; then a turn marker that only one
# family's vocabulary holds as a special token.
FORMAT_RULES: tuple[tuple[str, str, str], ...] = (
    ("name", r"deepseek.?(r1|v3)", "deepseek_v3"),
    ("name", r"phi.?4", "phi4"),
    ("name", r"phi.?3", "phi3"),
    ("name", r"smol.?lm", "smollm2"),
    ("name", r"llama.?4", "llama4"),
    ("name", r"llama.?3", "llama3"),
    ("name", r"llama.?2", "llama2chat"),
    ("name", r"mistral.?small.?3|magistral|devstral", "mistral_v7"),
    ("name", r"mistral|mixtral|ministral", "mistral_instruct"),
    ("name", r"qwen.?3", "qwen3"),
    ("name", r"qwen", "qwen"),
    ("name", r"granite", "granite3"),
    ("name", r"command.?r|aya", "command"),
    ("name", r"zephyr", "zephyr"),
    ("name", r"openchat", "openchat"),
    ("name", r"vicuna", "vicuna_lmsys"),
    ("name", r"hermes|dolphin", "chatml"),
    ("architecture", r"gemma3.*", "gemma3"),
    ("architecture", r"gemma2?", "gemma2"),
    ("architecture", r"phi3", "phi3"),
    ("architecture", r"qwen3(moe)?", "qwen3"),
    ("architecture", r"qwen2?(moe)?", "qwen"),
    ("architecture", r"llama4", "llama4"),
    ("architecture", r"granite(moe|hybrid)?", "granite3"),
    ("architecture", r"command-r|cohere2?", "command"),
    ("architecture", r"deepseek2?", "deepseek_v3"),
    ("vocabulary", r"<\|eot_id\|>", "llama3"),
    ("vocabulary", r"<start_of_turn>", "gemma3"),
    ("vocabulary", r"<\|im_start\|>", "chatml"),
)
FALLBACK_FORMAT = "chatml"
NO_TEMPLATE = "the file has no chat template"
OWN_TEMPLATE = "the model's own chat template"
# A marker is an angle-bracket token such as <|im_end|> or <｜User｜>; the doubled brackets of
# Llama 2's <<SYS>> are text in its vocabulary too, so they are not markers.
_MARKER = re.compile(r"<(?!<)[^<>\s]{1,64}>(?!>)")
# GGUF token types that llama.cpp matches as one token: CONTROL and USER_DEFINED.


@dataclass(slots=True)
class FormatChoice:
    """The format a chat uses, why (for ``auto``), and a warning when it does not suit the
    model. ``reason`` and ``warning`` quote GGUF text: show them through ``visible()``."""

    format: Format
    reason: str | None = None
    warning: str | None = None

    @property
    def summary(self) -> str:
        """``gemma3, from the model's architecture (gemma3); the file has no chat template``"""
        return self.format.name + (f", {self.reason}" if self.reason else "")

    def lines(self) -> list[str]:
        """What an interface says about the format, one line each."""
        return [f"format {self.summary}", *([self.warning] if self.warning else [])]


def pick(
    metadata: Mapping[str, Any], file_name: str = "", special: Collection[str] = ()
) -> tuple[str, str]:
    """The shipped format for a model without a chat template, and why: ``(name, reason)``,
    the reason as in ``"from the model's architecture (gemma3)"``.

    ``special`` holds the vocabulary's special tokens (see ``special_tokens``)."""
    names = [
        ("name", str(metadata.get(key, "")))
        for key in ("general.name", "general.basename")
        if metadata.get(key)
    ]
    if file_name:
        names.append(("file name", file_name))
    architecture = str(metadata.get("general.architecture", ""))
    for kind, pattern, format_name in FORMAT_RULES:
        if kind == "name":
            for label, name in names:
                if re.search(pattern, name, re.IGNORECASE):
                    return format_name, f"from the model's {label} ({name})"
        elif kind == "architecture":
            if architecture and re.fullmatch(pattern, architecture, re.IGNORECASE):
                return format_name, f"from the model's architecture ({architecture})"
        else:
            marker = pattern.replace("\\", "")
            if marker in special:
                return format_name, f"from the model's vocabulary (it has {marker} as a token)"
    facts = [f"the architecture ({architecture or '?'})"]
    facts += [f"the {label} ({name})" for label, name in names]
    listed = ", ".join(facts[:-1]) + " or " + facts[-1] if len(facts) > 1 else facts[0]
    return FALLBACK_FORMAT, (
        f"the fallback: no known family matches {listed}; pick a format made for the model"
    )


def markers(fmt: Format) -> list[str]:
    """The format's turn markers, in order of first use."""
    scaffold = [fmt.get(key, "") for key in formats.FIELDS if key not in ("system_prompt", "stops")]
    found = _MARKER.findall("\n".join(scaffold + list(fmt.stops)))
    return list(dict.fromkeys(found))


def marker_warning(fmt: Format, special: Collection[str], suggestion: str = "") -> str | None:
    """One line when some of the format's markers are not special tokens of the model."""
    foreign = [marker for marker in markers(fmt) if marker not in special]
    if not foreign:
        return None
    better = ""
    if suggestion and suggestion != fmt.name:
        better = " such as auto, its own chat template" if suggestion == "auto" else ""
        better = better or f" such as {suggestion}"
    are_not, them = (
        ("is not a special token", "it")
        if len(foreign) == 1
        else ("are not special tokens", "them")
    )
    return (
        f"format {fmt.name}: {', '.join(foreign)} {are_not} in this model's vocabulary, so the "
        f"model reads {them} as plain text; pick a format made for this model{better}"
    )


def _model_special_tokens(model: Backend) -> frozenset[str] | None:
    # a local model reads them from its GGUF (ezchat/engine/gguf.py); a server's model has no file here
    return getattr(model, "special_tokens", None)


def _file_name(model: Backend) -> str:
    # the Backend protocol does not promise a file (a server's model has a name only)
    return Path(getattr(model, "filename", "") or "").name


def _auto_reason(
    metadata: Mapping[str, Any], file_name: str, special: Collection[str]
) -> tuple[str | None, str]:
    """``(None, "")`` when the model has its own chat template, else the shipped format that
    ``auto`` means for it and why."""
    if metadata.get("tokenizer.chat_template"):
        return None, ""
    name, reason = pick(metadata, file_name, special)
    return name, f"{reason}; {NO_TEMPLATE}"


def auto_format(model: Backend) -> Format:
    """``auto`` for a model: its chat template, else the shipped format its family uses."""
    special = _model_special_tokens(model) or ()
    name, _ = _auto_reason(model.metadata, _file_name(model), special)
    if name is not None:
        return formats.load(name)
    # The Thread adds the BOS token when the GGUF asks for it, and the format strips the
    # template's own copy; when the GGUF does not ask for one, the template gets none either
    # (SmolLM2's "BOS" is <|im_start|>, which a template must not receive as bos_token).
    own = formats.from_metadata(
        model.metadata,
        bos_token=model.token_text(model.bos_token) if model.add_bos else "",
        eos_token=model.token_text(model.eos_token),
    )
    return own if own is not None else formats.load(FALLBACK_FORMAT)


def explain(requested: Any, fmt: Format, model: Backend) -> FormatChoice:
    """Why the chat uses ``fmt`` (asked for as ``requested``) and whether it suits ``model``."""
    special = _model_special_tokens(model)
    auto_name, reason = _auto_reason(model.metadata, _file_name(model), special or ())
    choice = FormatChoice(fmt)
    if isinstance(requested, str) and requested.lower() == "auto":
        choice.reason = reason or OWN_TEMPLATE
    if special is not None:
        choice.warning = marker_warning(fmt, special, auto_name or "auto")
    return choice


def file_summary(
    metadata: Mapping[str, Any], file_name: str, special: frozenset[str] | None
) -> tuple[str, str | None]:
    """What ``auto`` means for a GGUF file, read from its header alone (``ezchat info``), given
    its special tokens (``gguf.special_tokens``): the format and why, and a warning when that
    format's markers are not the file's special tokens."""
    name, reason = _auto_reason(metadata, file_name, special or ())
    if name is None:
        return f"auto, {OWN_TEMPLATE}", None
    fmt = formats.load(name)
    return f"{name}, {reason}", marker_warning(fmt, special) if special is not None else None
