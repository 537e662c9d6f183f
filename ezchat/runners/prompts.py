"""Prompts rendered through Jinja templates, and collections of them to run as a batch.

A template turns a prompt's parts (``user_prompt``, ``system_prompt``, the context keys) into
the user message; the model's chat format then wraps it in its markup. A template whose file
name ends in ``.raw.j2`` renders the whole prompt instead, chat markup included, and no format
is applied (for models whose markup you want to write by hand).

Shipped templates live beside this module in ``templates/``; files in the user's
``templates`` config dir (``ezchat.settings.paths.user_dir("templates")``) add names or override them.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ..chat.jinja_bounds import BoundedEnvironment, generate_text
from ..chat.jinja_limits import bounded
from ..errors import UnknownNameError, UserFileError
from ..settings import paths

KIND = "templates"
DEFAULT_TEMPLATE = "default"
SHIPPED_DIR = Path(__file__).resolve().parent / "templates"
_SUFFIXES = (".j2", ".jinja", ".jinja2")
_RAW_MARK = ".raw"


# --- templates ----------------------------------------------------------------------------------


def template_dirs() -> list[Path]:
    """Where templates are looked up, later folders overriding earlier ones."""
    return [SHIPPED_DIR, paths.user_dir(KIND)]


def _template_name(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix in _SUFFIXES else path.name


def available_templates() -> dict[str, Path]:
    """Every template by name (the file name without ``.j2``), user files winning."""
    found: dict[str, Path] = {}
    for folder in template_dirs():
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in _SUFFIXES and path.is_file():
                    found[_template_name(path)] = path
    return found


def find_template(name: str) -> Path:
    """The file of template ``name`` (``default``, ``default.j2`` or a path to a file)."""
    candidate = Path(name).expanduser()
    if candidate.suffix in _SUFFIXES and candidate.is_file():
        return candidate
    templates = available_templates()
    key = _template_name(Path(name))
    if key in templates:
        return templates[key]
    raise UnknownNameError(
        f"unknown template {name!r}: choose one of {', '.join(sorted(templates))}, "
        f"or add {key}.j2 to {paths.user_dir(KIND)}"
    )


def is_raw_template(path: Path) -> bool:
    """Raw templates (``name.raw.j2``) render the whole prompt, chat markup included."""
    return _template_name(path).endswith(_RAW_MARK)


@functools.cache
def _environment() -> BoundedEnvironment:
    # Missing context keys render empty, as in the seed's templates where not every prompt has
    # every key. A raw template's last newline is part of the prompt, so it is kept. A template
    # is a user's file: it is bounded in time, memory and size as a chat template is.
    return BoundedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


@functools.lru_cache(maxsize=64)
def _compile(path: Path, mtime_ns: int) -> jinja2.Template:
    # mtime_ns is part of the cache key, so an edited template is read again.
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserFileError(f"{path}: cannot read the template ({exc})") from None
    try:
        return bounded(lambda: _environment().from_string(source), f"template {path}")
    except jinja2.TemplateSyntaxError as exc:
        raise UserFileError(f"{path}:{exc.lineno}: {exc.message}") from None


def load_template(name: str) -> tuple[jinja2.Template, Path]:
    path = find_template(name)
    return _compile(path, path.stat().st_mtime_ns), path


# --- prompts ------------------------------------------------------------------------------------


def _merge(parts: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, what: str) -> dict:
    """Context and metadata may be one dict or a list of dicts (merged in order)."""
    if parts is None:
        return {}
    if isinstance(parts, Mapping):
        return dict(parts)
    merged: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, Mapping):
            raise TypeError(f"{what} must be a dict or a list of dicts, not {type(part).__name__}")
        merged.update(part)
    return merged


@dataclass
class Prompt:
    """One request to the model: the system and user prompts, context keys for the template,
    metadata carried through to the response, and ids.

    ``id`` is unique per prompt (a UUID unless given); ``conversation_id`` groups the turns of
    one conversation (in a ``PromptCollection`` every prompt is its own conversation: its
    index). ``reformated`` holds the rendered text: the user message, or for a raw template the
    whole prompt (``raw`` is then True)."""

    sys_prompt: str | None
    user_prompt: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    conversation_id: int = 0
    context: dict[str, Any] = field(default_factory=dict)
    meta_data: dict[str, Any] = field(default_factory=dict)
    reformated: str | None = None  # None: render it from the template
    template_name: str = DEFAULT_TEMPLATE
    raw: bool = False

    def __post_init__(self) -> None:
        self.context = _merge(self.context, "context")
        self.meta_data = _merge(self.meta_data, "meta_data")
        if self.reformated is None:
            self.render()

    def variables(self) -> dict[str, Any]:
        """What a template sees: the context keys, then the prompt's own fields (these win)."""
        return {
            **self.context,
            "system_prompt": self.sys_prompt or "",
            "user_prompt": self.user_prompt,
            "context": self.context,
            "meta_data": self.meta_data,
            "id": self.id,
            "conversation_id": self.conversation_id,
        }

    def render(self, template_name: str | None = None) -> str:
        """Render through the template (this prompt's own by default) into ``reformated``."""
        if template_name is not None:
            self.template_name = template_name
        template, path = load_template(self.template_name)
        try:
            text = bounded(lambda: generate_text(template, self.variables()), f"template {path}")
        except jinja2.TemplateError as exc:
            raise UserFileError(f"{path}: the template failed: {exc}") from None
        self.raw = is_raw_template(path)
        # A message's trailing newlines only come from the file's layout; a raw prompt's are
        # part of the markup (a reply starts after "assistant\n").
        self.reformated = text if self.raw else text.rstrip()
        return self.reformated


class PromptCollection(list[Prompt]):
    """A list of Prompts to run together (``BatchRunner.run``)."""

    model_name: str | None = None

    @classmethod
    def create_prompts(
        cls,
        sys_prompts: str | Sequence[str | None] | None,
        user_prompts: Sequence[str],
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        meta_datas: Sequence[Mapping[str, Any] | None] | None = None,
        model_name: str | None = None,
        template_name: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> PromptCollection:
        """One Prompt per user prompt. ``sys_prompts`` is one system prompt for all or one per
        prompt; ``contexts`` and ``meta_datas`` are one dict per prompt (or None)."""
        if isinstance(user_prompts, str):
            user_prompts = [user_prompts]
        count = len(user_prompts)
        systems = _per_prompt(sys_prompts, count, "sys_prompts")
        context_list = _per_prompt(contexts, count, "contexts")
        meta_list = _per_prompt(meta_datas, count, "meta_datas")
        id_list = _per_prompt(ids, count, "ids")
        template = template_name or DEFAULT_TEMPLATE
        collection = cls(
            Prompt(
                sys_prompt=systems[i],
                user_prompt=user_prompts[i],
                id=str(id_list[i]) if id_list[i] is not None else str(uuid.uuid4()),
                conversation_id=i,
                context=context_list[i] or {},
                meta_data=meta_list[i] or {},
                template_name=template,
            )
            for i in range(count)
        )
        collection.model_name = model_name
        return collection

    @property
    def user_prompts(self) -> list[str]:
        return [prompt.user_prompt for prompt in self]


def _per_prompt(values: Any, count: int, name: str) -> list[Any]:
    """One value per prompt: a single value (str, dict or None) is shared by all of them."""
    if values is None or isinstance(values, str | Mapping):
        return [values] * count
    values = list(values) if isinstance(values, Iterable) else [values]
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} items but there are {count} user prompts")
    return values
