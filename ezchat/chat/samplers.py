"""Sampler settings and presets from TOML files: plain data. The llama.cpp chain built from them
lives in the engine (ezchat.engine.sampling), so loading a preset never loads the native library."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..errors import EzChatError, UserFileError
from ..settings import userfiles

KIND = "samplers"
# The preset a chat, a runner or a server model uses when none is chosen: named here only.
DEFAULT_PRESET = "DefaultSampling"


@dataclass(frozen=True, slots=True)
class FieldInfo:
    type: type
    low: float | None
    high: float | None
    help: str


# One table: the form in the TUI, validate() and the file loader all read it.
FIELD_INFO: dict[str, FieldInfo] = {
    "max_len_tokens": FieldInfo(int, None, None, "most tokens per reply; < 1 for no limit"),
    "temp": FieldInfo(float, 0.0, 10.0, "temperature; 0 picks the most likely token"),
    "top_p": FieldInfo(
        float, 0.0, 1.0, "nucleus: keep the smallest set with this much probability"
    ),
    "min_p": FieldInfo(
        float, 0.0, 1.0, "drop tokens below this fraction of the top token's probability"
    ),
    "top_k": FieldInfo(int, 0, None, "keep the k most likely tokens; 0 keeps all"),
    "frequency_penalty": FieldInfo(float, -2.0, 2.0, "penalty growing with a token's count"),
    "presence_penalty": FieldInfo(float, -2.0, 2.0, "flat penalty for tokens already present"),
    "repeat_penalty": FieldInfo(float, 0.0, 10.0, "divides repeated tokens' logits; 1 is off"),
    "penalty_last_n": FieldInfo(int, -1, None, "how many recent tokens the penalties see; -1 all"),
    "typical_p": FieldInfo(float, 0.0, 1.0, "locally typical sampling; 1 is off"),
    "seed": FieldInfo(int, -1, 2**32 - 1, "random seed; -1 picks one per reply"),
    "mirostat_mode": FieldInfo(int, 0, 2, "0 off, 1 mirostat, 2 mirostat 2.0"),
    "mirostat_tau": FieldInfo(float, 0.0, 20.0, "mirostat target surprise"),
    "mirostat_eta": FieldInfo(float, 0.0, 1.0, "mirostat learning rate"),
    "dry_multiplier": FieldInfo(float, 0.0, 10.0, "DRY repetition penalty strength; 0 is off"),
    "dry_base": FieldInfo(float, 1.0, 10.0, "DRY penalty growth base"),
    "dry_allowed_length": FieldInfo(int, 0, None, "repeats up to this length are not penalised"),
    "dry_penalty_last_n": FieldInfo(int, -1, None, "how far back DRY looks; -1 the whole context"),
    "dry_sequence_breakers": FieldInfo(list, None, None, "strings that end a repeated sequence"),
    "xtc_probability": FieldInfo(float, 0.0, 1.0, "chance to exclude top choices; 0 is off"),
    "xtc_threshold": FieldInfo(float, 0.0, 0.5, "top choices above this probability are excluded"),
    "top_n_sigma": FieldInfo(
        float, -1.0, 10.0, "keep tokens within n sigma of the top logit; -1 off"
    ),
    "dynatemp_range": FieldInfo(float, 0.0, 10.0, "dynamic temperature range; 0 is off"),
    "dynatemp_exponent": FieldInfo(float, 0.0, 10.0, "dynamic temperature exponent"),
}


@dataclass(slots=True)
class SamplerSettings:
    """How the next token is chosen. Defaults are llama.cpp's."""

    max_len_tokens: int = -1
    temp: float = 0.8
    top_p: float = 0.95
    min_p: float = 0.05
    top_k: int = 40
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.0
    penalty_last_n: int = 64
    typical_p: float = 1.0
    seed: int = -1
    mirostat_mode: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = -1
    dry_sequence_breakers: list[str] = field(default_factory=lambda: ["\n", ":", '"', "*"])
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    top_n_sigma: float = -1.0
    dynatemp_range: float = 0.0
    dynatemp_exponent: float = 1.0
    name: str = "custom"

    def validate(self) -> SamplerSettings:
        for key, info in FIELD_INFO.items():
            problem = _check_value(key, getattr(self, key), info)
            if problem:
                raise ValueError(problem)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> SamplerSettings:
        changes.setdefault("name", "custom" if changes else self.name)
        return replace(self, **changes).validate()

    @property
    def is_greedy(self) -> bool:
        return self.temp <= 0 or self.top_k == 1

    def __repr__(self) -> str:
        changed = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "name" and getattr(self, f.name) != getattr(_DEFAULTS, f.name)
        }
        inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"SamplerSettings({self.name!r}{', ' if inner else ''}{inner})"


_DEFAULTS = SamplerSettings()


def field_info() -> dict[str, FieldInfo]:
    return dict(FIELD_INFO)


def parse_value(name: str, text: str) -> Any:
    """The value typed for setting ``name`` (the REPL's commands, the app's form), checked as
    a preset file's values are; ValueError with a one-line reason."""
    info = FIELD_INFO[name]
    text = text.strip()
    read = {int: int, float: float}.get(info.type, json.loads)
    try:
        value = read(text)
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(info.type, "a JSON list")
        raise ValueError(f"{name} must be {kind}, got {text!r}") from None
    problem = _check_value(name, value, info)
    if problem:
        raise ValueError(problem)
    return value


# Integers travel to llama.cpp as C ints, which ctypes wraps silently; a field without a bound
# of its own is held to int32_t (the seed, a uint32_t, has its own).
_C_INT = (-(2**31), 2**31 - 1)


def _check_value(key: str, value: Any, info: FieldInfo) -> str | None:
    """The one check of a sampler value: files, the form, the REPL and validate() use it."""
    numeric = (int, float) if info.type is float else (info.type,)
    if isinstance(value, bool) or not isinstance(value, numeric):
        return f"{key} must be {info.type.__name__}, got {value!r}"
    if info.type is list:
        return (
            None if all(isinstance(v, str) for v in value) else f"{key} must be a list of strings"
        )
    if not math.isfinite(value):  # NaN passes every comparison below
        return f"{key} must be a finite number, got {value!r}"
    low, high = info.low, info.high
    if info.type is int:
        low = _C_INT[0] if low is None else low
        high = _C_INT[1] if high is None else high
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {_number(low)} and {_number(high)}"
            if low is not None and high is not None
            else f"at least {_number(low)}"
            if low is not None
            else f"at most {_number(high)}"
        )
        return f"{key} must be {bounds}, got {value!r}"
    return None


def _number(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


# --- presets ------------------------------------------------------------------------------------

_cache: dict[tuple[str, int], tuple[SamplerSettings, str]] = {}


def _load_file(file: userfiles.UserFile) -> tuple[SamplerSettings, str]:
    key = (str(file.path), userfiles.file_stamp(file.path))
    if key in _cache:
        settings, description = _cache[key]
        return replace(
            settings, dry_sequence_breakers=list(settings.dry_sequence_breakers)
        ), description
    data = userfiles.read_toml(file.path)
    valid: dict[str, type | tuple[type, ...]] = {"description": str}
    for name, info in FIELD_INFO.items():
        valid[name] = (int, float) if info.type is float else info.type
    userfiles.check_keys(data, file.path, valid)
    description = data.pop("description", "")
    for name, value in data.items():
        problem = _check_value(name, value, FIELD_INFO[name])
        if problem:
            raise UserFileError(f"{userfiles.where(file.path, name)}: {problem}")
    settings = SamplerSettings(**data, name=file.name)
    _cache[key] = (settings, description)
    return replace(
        settings, dry_sequence_breakers=list(settings.dry_sequence_breakers)
    ), description


def load(name: str) -> SamplerSettings:
    """A fresh copy of the preset ``name`` (a user file overrides a shipped one)."""
    return _load_file(userfiles.find(KIND, name, "sampler preset"))[0]


def load_default() -> SamplerSettings:
    """A fresh copy of the default preset (``DEFAULT_PRESET``)."""
    return load(DEFAULT_PRESET)


def description(name: str) -> str:
    return _load_file(userfiles.find(KIND, name, "sampler preset"))[1]


def available() -> list[str]:
    return sorted(userfiles.discover(KIND))


def sources() -> dict[str, userfiles.UserFile]:
    return userfiles.discover(KIND)


def sampler_setting(sampler: SamplerSettings) -> str:
    """How a chat saves its sampler: the preset's name while it is unchanged, else its values
    as JSON (a sampler edited in a form)."""
    if sampler.name in available():
        try:
            preset = load(sampler.name)
        except EzChatError:  # a broken user preset file: keep the values themselves
            preset = None
        if preset is not None and preset.to_dict() == sampler.to_dict():
            return sampler.name
    return json.dumps(sampler.to_dict(), sort_keys=True)


def __getattr__(name: str) -> SamplerSettings:
    if name.startswith("_") or name not in userfiles.discover(KIND):
        raise AttributeError(f"module 'ezchat.chat.samplers' has no attribute {name!r}")
    return load(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(available()))


def recent_window(last_n: int, n_ctx: int) -> int:
    """How many recent tokens a penalty sees: ``-1`` (the settings' "all") is the context."""
    return n_ctx if last_n < 0 else last_n
