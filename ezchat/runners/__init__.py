"""Runners: push many prompts through a Model.

from ezchat.runners import BasicModelRunner, ChatRunner, BatchRunner, PromptCollection
runner = ChatRunner(model, system_prompt="You are a pirate.")
runner("How are you?")                                   # -> str
runner(["How old are you?", "Why?"])                     # -> list[str], one batch
runner("How old are you?", output_type={"age": "int"})   # -> {"age": 25}
"""

from __future__ import annotations

from ..engine.batched import ParallelDecoder, Request, run_batched
from .basic import BasicModelRunner
from .batch import BatchRunner
from .cache import ResponseCache
from .chat import ChatRunner, ConversationHandler
from .data import Example
from .prompts import Prompt, PromptCollection, available_templates, find_template
from .responses import Response, Responses
from .typed import OutputType, OutputTypeError, TypedOutputError

# The seed's names for the same things.
LlamaV2Runner = ChatRunner
BatchInferenceRunner = BatchRunner
ChatInferenceRunner = ChatRunner

__all__ = [
    "BasicModelRunner",
    "BatchInferenceRunner",
    "BatchRunner",
    "ChatInferenceRunner",
    "ChatRunner",
    "ConversationHandler",
    "Example",
    "LlamaV2Runner",
    "OutputType",
    "OutputTypeError",
    "ParallelDecoder",
    "Prompt",
    "PromptCollection",
    "Request",
    "Response",
    "ResponseCache",
    "Responses",
    "TypedOutputError",
    "available_templates",
    "find_template",
    "run_batched",
]
