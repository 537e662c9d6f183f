"""A saved chat and a live ``Thread``: build one from the other, and keep the model's KV state
with the chat so reopening a long chat does not evaluate its history again.

``thread_from_store`` gives a Thread whose ``tree`` is the stored tree, node for node with the
same ids, and whose ``messages`` are its active path, so an interface saves a node by its id. Replies keep the token ids they were generated as, so the rebuilt prompt equals the saved
KV state token for token and ``restore_state`` lets the next turn evaluate only the new message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING

from ..chat import formats, samplers
from ..chat.reasoning import parse_thinking, thinking_setting
from ..chat.samplers import SamplerSettings, sampler_setting
from ..chat.thread import Message, Thread
from ..chat.tree import Node, Tree
from ..errors import EzChatError, StoreError
from .schema import DEFAULT_TITLE
from .store import ChatStore

if TYPE_CHECKING:
    from ..chat.formats import Format
    from ..engine.model import Model

_SAMPLER_FIELDS = {f.name for f in fields(SamplerSettings)}


def sampler_from_setting(text: str) -> SamplerSettings:
    """The sampler a chat saved: a preset name, JSON values, or '' for the default preset.
    An unknown or broken preset raises its EzChatError; bad JSON values raise StoreError."""
    text = text.strip()
    if not text:
        return samplers.load_default()
    if not text.startswith("{"):
        return samplers.load(text)
    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("not an object")
        settings = SamplerSettings(**{k: v for k, v in values.items() if k in _SAMPLER_FIELDS})
        return settings.validate()
    except (ValueError, TypeError, RecursionError) as exc:
        raise StoreError(
            f"the chat's saved sampler values are invalid ({exc}); pick a sampler preset"
        ) from None


def thread_from_store(
    store: ChatStore,
    chat_id: int,
    model: Model,
    sampler: SamplerSettings | None = None,
    *,
    notes: list[str] | None = None,
) -> Thread:
    """A Thread on ``model`` with the chat's format, sampler (unless ``sampler`` is given),
    thinking switch and messages. A format or preset that no longer exists falls back to ``auto`` or the default
    preset, so the chat still opens; each fallback is described in ``notes`` when given."""
    settings = store.chat_settings(chat_id)
    fmt = _saved_format(settings["format"], notes)
    if sampler is None:
        sampler = _saved_sampler(settings["sampler"], notes)
    saved = store.load_tree(chat_id, notes)
    # The leading system messages go in through the constructor, so that Thread.reset()
    # returns to them (and not to the whole saved conversation).
    lead = []
    for node in saved.active_path:
        if node.role != "system":
            break
        lead.append(dict(node.message))
    thread = Thread(model, fmt, sampler, messages=lead)
    thread.set_thinking(_saved_thinking(settings["thinking"], notes))
    del thread.messages[:]  # the saved tree takes their place, with its own node ids
    copy_tree(saved, thread.tree, thread.message_from_dict)
    _remember_tokens(thread)
    return thread


def copy_tree(source: Tree, target: Tree, as_message: Callable[[dict], dict]) -> None:
    """Put ``source``'s nodes into the empty ``target`` with the same ids, origins, tokens and
    bookmarks, each message made by ``as_message``, and the same active path."""
    for node in source.walk():
        parent = target.nodes[node.parent.id]
        target.add(
            parent,
            as_message(dict(node.message)),
            node.origin,
            id=node.id,
            activate=False,
            tokens=node.tokens,
            token_info=node.token_info,
            bookmarked=node.bookmarked,
            created=node.created,
        )
    for node in source.walk():
        if node.chosen is not None:
            target.nodes[node.id].chosen = target.nodes[node.chosen.id]
    target.truncate_to(target.nodes[source.active.id])


def restore_state(store: ChatStore, chat_id: int, thread: Thread) -> bool:
    """Load the chat's saved KV state into the Thread's model when it was saved for this model
    file and settings; False (quietly) when there is none or it does not fit, and then the
    next turn evaluates the history as usual."""
    model = thread.model
    if not _has_local_cache(model):
        return False
    saved = store.load_state(chat_id, model.context_fingerprint())
    if saved is None:
        return False
    tokens, state = saved
    if model.cached_tokens == tokens:
        return True
    return model.load_state(tokens, state)


def save_thread_state(store: ChatStore, chat_id: int, thread: Thread) -> bool:
    """Save the model's KV state with the chat (and the token ids of its replies, so a rebuilt
    Thread prompts with exactly the cached tokens). False when the cache is empty."""
    model = thread.model
    if not _has_local_cache(model):
        return False
    tokens, state = model.save_state()
    if not tokens:
        return False
    store.save_state(chat_id, model.context_fingerprint(), tokens, state)
    _save_reply_tokens(store, chat_id, thread)
    return True


def chat_from_thread(
    store: ChatStore, thread: Thread, title: str = DEFAULT_TITLE, *, model: str | None = None
) -> int:
    """Save a Thread as a new chat (its messages, format, sampler and system prompt); returns
    the chat id. ``model`` names the model in the chat list (default: the model's file)."""
    system = "".join(m["content"] for m in _leading_system(thread.messages))
    chat_id = store.create_chat(
        title,
        model=model if model is not None else thread.model.filename,
        format=thread.format.name,
        sampler=sampler_setting(thread.sampler),
        system_prompt=system,
        thinking=thinking_setting(thread.thinking),
    )
    for node in thread.tree.walk():
        _save_node(store, chat_id, thread, node)
    store.set_active_leaf(chat_id, thread.tree.active.id)
    return chat_id


def _save_node(store: ChatStore, chat_id: int, thread: Thread, node: Node) -> None:
    """Save a node of the Thread's tree, with its reply's token ids as the prompt holds them."""
    if node.role == "bot" and node.tokens is None:
        node.tokens = thread.reply_tokens(node.message)
    store.save_node(chat_id, node, activate=False)


def _has_local_cache(model: object) -> bool:
    """A local llama.cpp model, as opposed to a remote backend with no KV state to save."""
    return bool(getattr(model, "can_save_state", False))


def _leading_system(messages: list[Message]) -> list[Message]:
    lead = []
    for message in messages:
        if message["role"] != "system":
            break
        lead.append(message)
    return lead


def _saved_format(name: str, notes: list[str] | None) -> Format | str:
    if not name or name.lower() == "auto":
        return "auto"
    try:
        return formats.load(name)
    except EzChatError as exc:
        _note(notes, f"format {name!r} is not available ({exc}); using the model's own template")
        return "auto"


def _saved_thinking(setting: str, notes: list[str] | None) -> bool | None:
    """The chat's thinking switch; a value this ezchat does not know leaves the default."""
    try:
        return parse_thinking(setting)
    except ValueError as exc:
        _note(notes, f"the chat's saved {exc}; using the template's default")
        return None


def _saved_sampler(setting: str, notes: list[str] | None) -> SamplerSettings:
    try:
        return sampler_from_setting(setting)
    except EzChatError as exc:
        _note(notes, f"{exc}; using the {samplers.DEFAULT_PRESET} preset")
        return samplers.load_default()


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)


def _remember_tokens(thread: Thread) -> None:
    """Give the Thread the token ids its replies were generated as (ids saved by another
    model are refused there, and that text is tokenized again)."""
    if not _has_local_cache(thread.model):
        return
    for node in thread.tree.walk():
        taken = node.role == "bot" and node.tokens
        if taken and not thread.remember_tokens(thread.reply_text(node.message), node.tokens):
            node.tokens = node.token_info = None


def _save_reply_tokens(store: ChatStore, chat_id: int, thread: Thread) -> None:
    """Record the token ids of the replies on the active path that the store holds without
    them (an interface that saved only their text)."""
    saved = store.load_tree(chat_id)
    for node in thread.tree.active_path:
        stored = saved.nodes.get(node.id)
        if stored is None or (stored.role, stored.content) != (node.role, node.content):
            break
        if node.role == "bot":
            tokens = thread.reply_tokens(node.message)
            if stored.tokens != tokens:
                store.set_tokens(chat_id, node.id, tokens)
