"""What a runner returns for each prompt, and a printed summary of a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .prompts import Prompt

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Response:
    """One prompt's outcome.

    ``text`` is the reply; ``value`` the parsed value when an output type was asked for.
    ``skipped`` holds the reason when the prompt was not run (it does not fit the context);
    ``error`` the reason when it ran but its typed reply could not be parsed. ``cut_off``: the
    typed reply stopped before its JSON was whole, and ``value`` was read from it closed to JSON
    of the type (``text`` stays what the model wrote).
    """

    prompt: Prompt
    text: str = ""
    value: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    stop_reason: str = ""
    cached: bool = False
    skipped: str | None = None
    error: str | None = None
    cut_off: bool = False
    request_id: int = 0

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None

    @property
    def output(self) -> Any:
        """The parsed value for typed runs, the text otherwise (None when not ok)."""
        if not self.ok:
            return None
        return self.value if self.value is not None else self.text

    @property
    def response_data(self) -> dict[str, Any]:
        """Everything about the response as plain data (one JSONL line of ``ezchat batch``)."""
        prompt = self.prompt
        data: dict[str, Any] = {
            "id": prompt.id,
            "conversation_id": prompt.conversation_id,
            "request_id": self.request_id,
            "prompt": prompt.user_prompt,
            "system": prompt.sys_prompt,
            "context": prompt.context,
            "metadata": prompt.meta_data,
        }
        if self.skipped is not None:
            data["skipped"] = self.skipped
            return data
        data["response"] = self.text
        if self.value is not None:
            data["value"] = self.value
            data["cut_off"] = self.cut_off
        if self.error is not None:
            data["error"] = self.error
        data.update(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            seconds=round(self.seconds, 4),
            stop_reason=self.stop_reason,
            cached=self.cached,
        )
        return data


class Responses(list[Response]):
    """The responses of one run, in the order of its prompts."""

    @property
    def texts(self) -> list[str]:
        return [response.text for response in self]

    @property
    def outputs(self) -> list[Any]:
        return [response.output for response in self]

    def totals(self) -> dict[str, float]:
        ran = [r for r in self if r.skipped is None]
        return {
            "prompts": len(self),
            "skipped": len(self) - len(ran),
            "errors": sum(1 for r in ran if r.error is not None),
            "cut_off": sum(1 for r in ran if r.cut_off),
            "cached": sum(1 for r in ran if r.cached),
            "prompt_tokens": sum(r.prompt_tokens for r in ran),
            "completion_tokens": sum(r.completion_tokens for r in ran),
        }

    def print_response_summary(
        self, console: Console | None = None, file: IO[str] | None = None
    ) -> None:
        """Print every response with its prompt, context, metadata, ids and timing (rich).
        Prompts, responses and metadata are shown through ``visible`` (ezchat.safetext)."""
        from rich.console import Console
        from rich.rule import Rule
        from rich.text import Text

        from ..safetext import visible

        console = console or Console(file=file)
        for response in self:
            prompt = response.prompt
            console.print(Rule(style="dim"))
            lines: list[tuple[str, str]] = [("🧑‍💻 User Prompt:\n", prompt.user_prompt)]
            if prompt.context:
                lines.append(("📚 Added Context: ", f"{prompt.context} (see the template)"))
            if response.skipped is not None:
                lines.append(("\n⏭️ Skipped: ", response.skipped))
            else:
                lines.append(("\n💬 Response:\n", response.text))
                if response.value is not None:
                    cut = " (cut off, closed)" if response.cut_off else ""
                    lines.append(("🧩 Value: ", repr(response.value) + cut))
                if response.error is not None:
                    lines.append(("⚠️ Error: ", response.error))
            lines.append(("\n🤖 System Prompt: ", prompt.sys_prompt or "(the format's default)"))
            if prompt.meta_data:
                lines.append(("🗂️ Metadata: ", str(prompt.meta_data)))
            lines += [
                ("🆔 Request ID: ", str(response.request_id)),
                ("🆔 Prompt ID: ", prompt.id),
                ("🆔 Conversation ID: ", str(prompt.conversation_id)),
            ]
            if response.skipped is None:
                cached = " (cached)" if response.cached else ""
                lines += [
                    (
                        "🔢 Tokens: ",
                        f"{response.prompt_tokens} in, {response.completion_tokens} out{cached}",
                    ),
                    ("⏳ Processing Time: ", f"{response.seconds:.4f} seconds"),
                ]
            for label, value in lines:
                console.print(Text.assemble((label, "bold"), visible(value)))
        totals = self.totals()
        console.print(Rule(style="dim"))
        console.print(
            f"{totals['prompts']} prompts: {totals['skipped']} skipped, {totals['errors']} "
            f"errors, {totals['cached']} cached; {totals['prompt_tokens']} tokens in, "
            f"{totals['completion_tokens']} out",
            markup=False,
            highlight=False,
        )
