"""``BasicModelRunner``: string in, string out, with the prompt given to the model as written."""

from __future__ import annotations

from .base import Runner
from .prompts import Prompt


class BasicModelRunner(Runner):
    """Text completion: ``runner("The capital of France is")`` continues the text.

    No chat format is applied (write the model's markup yourself, or use ``ChatRunner``).
    Loaded examples with outputs are put before each prompt as ``Input:``/``Output:`` pairs.
    """

    def make_prompt(self, text: str) -> Prompt:
        shots = self.shots()
        full = text
        if shots:
            lines = [f"Input: {e.input}\nOutput: {e.output}\n\n" for e in shots]
            full = "".join(lines) + f"Input: {text}\nOutput:"
        return Prompt(None, text, reformated=full, template_name="", raw=True)
