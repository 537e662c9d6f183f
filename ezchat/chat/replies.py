"""How a Thread starts its replies and records them as nodes of its tree (a mixin of Thread).

Nothing is overwritten: a new reply is a child of the conversation's last message; a reroll,
a continue and a branch are siblings of the reply they redo, so the earlier one stays in the
tree with everything after it. Each reply's node keeps the token ids the model generated and
how it weighed each (``TokenInfo``), so a later prompt matches the cache exactly and any token
of any reply can be inspected without evaluating anything again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EzChatError
from .message import Message
from .reply import Reply, reroll_sampler
from .reply_kind import ReplyKind
from .samplers import SamplerSettings
from .tree import Made, Node, Origin, TokenInfo

if TYPE_CHECKING:
    from .thread import Thread


class ReplyStarting:
    def start(
        self: Thread,
        kind: ReplyKind | str = ReplyKind.REPLY,
        *,
        prefix: str = "",
        position: int = 0,
        token: int | None = None,
        text: str | None = None,
        index: int | None = None,
        version: int | None = None,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
    ) -> Reply:
        """Begin a reply of any ``kind`` (see ReplyKind): the one entry point the app and the
        REPL use. ``prefix`` starts a new reply; a branch takes ``token`` (or the typed
        ``text``) at token ``position`` of reply ``messages[index]`` (default: the last);
        ``version`` numbers a reroll among the replies to its prompt (by default, how many
        there are) and picks its seed (reroll_sampler)."""
        kind = ReplyKind(kind)
        sampler = sampler or self.sampler
        if kind is ReplyKind.REROLL:
            if version is None:
                self._last_bot_message(ReplyKind.REROLL)
                version = len(self.tree.siblings(self.tree.active))
            return self.start_reroll(
                candidates=candidates, sampler=reroll_sampler(sampler, version)
            )
        if kind is ReplyKind.BRANCH:
            if token is None and text is None:
                raise EzChatError("a branch needs the token (or the text) to put at its position")
            return self.start_branch(
                position, token, text=text, index=index, candidates=candidates, sampler=sampler
            )
        if kind is ReplyKind.CONTINUE:
            return self.start_reply(continue_last=True, candidates=candidates, sampler=sampler)
        return self.start_reply(prefix, candidates=candidates, sampler=sampler)

    def start_reply(
        self: Thread,
        prefix: str = "",
        *,
        continue_last: bool = False,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
    ) -> Reply:
        """Begin the bot's next reply. ``prefix`` starts it (and is part of it);
        ``continue_last`` extends the last bot message (into a new sibling holding the longer
        text) instead of adding a new one."""
        continues = None
        if continue_last:
            if not self.messages or self.messages[-1]["role"] != "bot":
                raise EzChatError("there is no bot reply to continue; send a message first")
            continues = self.messages[-1]
        plan = self.plan_prompt(prefix, continues)
        stops: list[str | int] = list(self.format.stops)
        generation = self.model.start(
            plan.tokens, stops, sampler or self.sampler, candidates, allow_shift=plan.dropped > 0
        )
        reply = Reply(self, generation, prefix, continues)
        if continues is not None:
            reply.continues_node = self.tree.active
            reply.origin = Origin(Made.CONTINUE)
        return reply

    def _record_reply(self: Thread, reply: Reply) -> Message:
        """Put the finished (or stopped) reply into the tree as its node."""
        result = reply.result
        self.last_result = result
        generated = list(result.tokens)
        source = reply.continues
        if source is not None:
            before = self.reply_text(source)
            head = self.content_tokens(before) + (
                self.content_tokens(reply.prefix) if reply.prefix else []
            )
            head_info = _aligned(reply.continues_node, len(self.content_tokens(before)))
            head_info += [None] * (len(head) - len(head_info))
            message = source if reply.in_place else source.copy_message()
            self._set_reply_text(message, before + reply.prefix + result.text)
            if reply.in_place:
                node = reply.continues_node
            else:
                node = self.tree.add_sibling(reply.continues_node, message, reply.origin)
        else:
            message = self.create_message("bot", "")
            self._set_reply_text(message, reply.prefix + result.text)
            message.reply_prefix = reply.prefix
            head = self.content_tokens(reply.prefix) if reply.prefix else []
            head_info = [None] * len(head)
            node = self.tree.append(message, reply.origin)
        reply.node = node
        # Keep the generated tokens for this text so the next prompt matches the cache exactly
        # (and a reply's token positions, reasoning included, stay those the model wrote).
        if result.stop_reason != "stop_string":
            tokens = head + generated
            self._content_tokens[self.reply_text(message)] = tokens
            node.tokens = tokens
            info = result.token_info
            generated_info = info if info and len(info) == len(generated) else None
            if generated_info is not None or any(head_info):
                node.token_info = head_info + (generated_info or [None] * len(generated))
        return message

    def send(self: Thread, prompt: str) -> str:
        """Add ``prompt`` as a user message, generate the reply, add it, and return it."""
        self.add_message("user", prompt)
        return self.start_reply().run()

    def _last_bot_message(self: Thread, action: str) -> Message:
        if not self.messages or self.messages[-1]["role"] != "bot":
            raise EzChatError(f"there is no bot reply to {action}; send a message first")
        return self.messages[-1]

    def start_reroll(
        self: Thread,
        *,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
        prefix: str | None = None,
    ) -> Reply:
        """Another reply to the same prompt as the last one, added as its sibling: the old
        reply stays in the tree (``Reply.replaced``). The prompt is already in the cache, so
        only the new reply's tokens are evaluated. The new reply starts with ``prefix``; by
        default with the prefix the user wrote for the one it redoes."""
        replaced = self._last_bot_message(ReplyKind.REROLL)
        node = self.tree.active
        if prefix is None:
            prefix = replaced.reply_prefix if isinstance(replaced, Message) else ""
        self.tree.truncate_to(node.parent)
        try:
            reply = self.start_reply(prefix, candidates=candidates, sampler=sampler)
        except BaseException:
            self.tree.switch_to(node)
            raise
        reply.replaced = replaced
        reply.kind = ReplyKind.REROLL
        reply.origin = Origin(Made.REROLL)
        return reply

    def reply_tokens(self: Thread, message: Message) -> list[int]:
        """The tokens of a message's content as the prompt holds them (for a reply: the tokens
        the model generated, its reasoning included)."""
        return list(self.content_tokens(self.reply_text(message)))

    def tokens_before(self: Thread, index: int, position: int) -> list[int]:
        """The prompt tokens that led to token ``position`` of the reply ``messages[index]``:
        the conversation before it, the bot header, and the reply's first ``position`` tokens."""
        message = self.messages[index]
        if message["role"] != "bot":
            raise EzChatError("only a bot reply has candidates; pick a bot message")
        head = self._tokens_for(self.messages[:index], add_generation_prompt=True)
        return head + self.reply_tokens(message)[:position]

    def candidates_at(self: Thread, index: int, position: int, k: int = 10) -> list:
        """The top-k candidates the model weighed for token ``position`` of reply ``index``
        (full-softmax probabilities). Only the tokens the cache lacks are evaluated."""
        return self.model.candidates(self.tokens_before(index, position), k)

    def start_branch(
        self: Thread,
        position: int,
        token: int | None = None,
        *,
        text: str | None = None,
        index: int | None = None,
        candidates: int = 0,
        sampler: SamplerSettings | None = None,
    ) -> Reply:
        """A new sibling of reply ``messages[index]`` (default: the last) that keeps its first
        ``position`` tokens, puts ``token`` (or the typed ``text``) in place of what the model
        chose there, and generates the rest. The old reply and everything after it stay in
        the tree (``Reply.replaced``); the conversation follows the branch."""
        if index is None:
            self._last_bot_message(ReplyKind.BRANCH)
            index = len(self.messages) - 1
        message = self.messages[index]
        if message["role"] != "bot":
            raise EzChatError("only a bot reply can be branched; pick a bot message")
        node = self.node_at(index)
        old_tokens = self.reply_tokens(message)
        if not 0 <= position <= len(old_tokens):
            raise EzChatError(f"the reply has {len(old_tokens)} tokens; pick one of those")
        kept = old_tokens[:position] + ([token] if token is not None else [])
        typed = self.content_tokens(text) if text else []
        branch_text = self.model.detokenize(kept) + (text or "")
        self._content_tokens[branch_text] = kept + typed
        twin = message.copy_message()
        self._set_reply_text(twin, branch_text)
        leaf = self.tree.active
        branch = self.tree.add_sibling(node, twin, Origin(Made.BRANCH, position))
        branch.tokens = kept + typed
        kept_info = _aligned(node, len(old_tokens))[:position]
        if token is not None:
            kept_info.append(_info_for(node, position, token))
        kept_info += [None] * len(typed)
        branch.token_info = kept_info if any(kept_info) else None
        try:
            reply = self.start_reply(continue_last=True, candidates=candidates, sampler=sampler)
        except BaseException:
            self.tree.delete(branch)
            self.tree.switch_to(leaf)
            raise
        reply.in_place = True
        reply.replaced = message
        reply.branch_text = branch_text
        reply.kind = ReplyKind.BRANCH
        reply.origin = branch.origin
        return reply


def _aligned(node: Node | None, count: int) -> list[TokenInfo | None]:
    """The node's TokenInfo for its first ``count`` tokens, where it has them for all."""
    info = node.token_info if node is not None else None
    if not info or len(info) < count:
        return [None] * count
    return list(info[:count])


def _info_for(node: Node, position: int, token: int) -> TokenInfo | None:
    """How the model weighed ``token`` at ``position`` of the reply, from its stored top-k."""
    info = (
        node.token_info[position] if node.token_info and position < len(node.token_info) else None
    )
    if info is None:
        return None
    probability = dict(info.top).get(token, info.probability if token == info.id else None)
    if probability is None:
        return None
    return TokenInfo(token, probability, info.top)
