"""``ChatRunner``: prompts as user messages in the model's chat format, with a system prompt;
and multi-turn conversations where each turn sees the earlier ones (``ConversationHandler``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat.thread import resolve_format
from ..errors import EzChatError
from .base import CacheChoice, Runner
from .execution import RunStats, execute
from .progress import BatchProgress
from .prompts import Prompt, PromptCollection
from .responses import Responses
from .typed import OutputType

if TYPE_CHECKING:
    from rich.console import Console

    from ..chat.formats import Format
    from ..chat.samplers import SamplerSettings
    from ..engine.model import Model


class ChatRunner(Runner):
    """``ChatRunner(model, system_prompt="You are a pirate.")("How are you?")``.

    The format is the model's own chat template by default (``format="auto"``), or any format
    name, dict or Format. Each call is a fresh conversation; ``chat([...])`` holds one across
    turns. Loaded examples with outputs come first as earlier user/assistant turns (few-shot).
    ``template_name`` renders every prompt through a Jinja template (see ``prompts``).
    """

    def __init__(
        self,
        model: Model | str | Path | None = None,
        system_prompt: str | None = None,
        format: Format | Mapping[str, Any] | str = "auto",
        sampler: SamplerSettings | None = None,
        *,
        template_name: str | None = None,
        cache: CacheChoice = True,
        parallel: int = 16,
        progress: bool = False,
        console: Console | None = None,
    ) -> None:
        super().__init__(
            model, sampler, cache=cache, parallel=parallel, progress=progress, console=console
        )
        self.format = resolve_format(format, self.model)
        self.system_prompt = system_prompt
        self.template_name = template_name

    def make_prompt(self, text: str, conversation_id: int = 0) -> Prompt:
        if self.template_name is None:
            return Prompt(
                self.system_prompt, text, conversation_id=conversation_id, reformated=text
            )
        return Prompt(
            self.system_prompt,
            text,
            conversation_id=conversation_id,
            template_name=self.template_name,
        )

    def history(self) -> list[tuple[str, str]]:
        turns: list[tuple[str, str]] = []
        for example in self.shots():
            assert example.output is not None
            turns += [("user", example.input), ("bot", example.output)]
        return turns

    def chat(self, user_prompts: Sequence[str], output_type: Any = None) -> list[Any]:
        """One conversation: each prompt is answered seeing the earlier prompts and replies.
        Returns the replies (None for a turn that was skipped)."""
        prompts = [self.make_prompt(text) for text in user_prompts]
        return self.converse(prompts, output_type).outputs

    def converse(
        self, prompts: Sequence[Prompt], output_type: Any = None, *, progress: bool | None = None
    ) -> Responses:
        """Run ``prompts`` as the turns of one conversation, in order. A skipped turn (too long
        for the context) leaves the conversation as it was; the oldest turns are left out of
        the prompt when the conversation outgrows the context."""
        if any(prompt.raw for prompt in prompts):
            raise EzChatError(
                "raw templates render a whole prompt, so they cannot hold a conversation; use a "
                "message template such as 'default'"
            )
        typed = OutputType(output_type) if output_type is not None else None
        history = self.history()
        responses = Responses()
        self.last_stats = RunStats()
        show = self.progress if progress is None else progress
        with BatchProgress(
            len(prompts), enabled=show, console=self.console, description="Conversation turns"
        ) as bar:
            for prompt in prompts:
                job = self.make_jobs([prompt], typed, history)[0]
                [response] = execute(
                    self.model,
                    [job],
                    format_name=self.format_name,
                    parallel=1,
                    cache=self.cache,
                    output_type=typed,
                    on_tokens=bar.tokens,
                    stats=self.last_stats,
                )
                bar.done()
                responses.append(response)
                if response.ok:
                    history += [("user", prompt.reformated or ""), ("bot", response.text)]
        self.last_responses = responses
        return responses


class ConversationHandler:
    """One multi-turn conversation from lists of user prompts, contexts and metadata, each
    prompt rendered through ``template_name`` and answered seeing the turns before it.

    All turns share one ``conversation_id``; ``run()`` returns their Responses in order."""

    def __init__(
        self,
        runner: ChatRunner,
        system_prompt: str | None,
        user_prompts: Sequence[str],
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        meta_data: Sequence[Mapping[str, Any] | None] | None = None,
        template_name: str | None = None,
        conversation_id: int = 0,
    ) -> None:
        self.runner = runner
        self.prompts = PromptCollection.create_prompts(
            system_prompt, user_prompts, contexts, meta_data, template_name=template_name
        )
        for prompt in self.prompts:
            prompt.conversation_id = conversation_id

    def run(self, output_type: Any = None) -> Responses:
        return self.runner.converse(self.prompts, output_type)
