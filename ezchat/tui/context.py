"""The context pane: how full the context is, what the last turn cost, the model's facts and
the sampler in use."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from ..chat.samplers import SamplerSettings
from ..engine.model import kv_cache_type_name
from ..safetext import visible

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..chat.context_stats import ContextStats
    from ..chat.thread import Thread

BAR_CELLS = 24
_DEFAULT_SAMPLER = SamplerSettings()


def usage_bar(used: int, limit: int, cells: int = BAR_CELLS) -> str:
    filled = round(cells * min(1.0, used / limit)) if limit else 0
    return "█" * filled + "░" * (cells - filled)


def short_count(n: int) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def model_facts(model: Backend) -> list[str]:
    """What the pane says about the model: a local file's facts, or the server's."""
    if not model.runs_in_process:
        return [
            f"Server {model.base_url}",
            f"Serves {model.model_id or 'its default model'} ({model.server_kind})",
            f"Context {model.context_length}",
        ]
    return [
        f"{Path(model.filename).name}",
        f"{model.gguf.architecture} · {short_count(model.n_params)} params · {model.quantization}",
        f"Native context {model.n_ctx_train}",
        f"RoPE base {model.rope_freq_base:g} · scale {model.ctx_scale:.2f}",
        f"GPU layers {model.n_gpu_layers} · flash attn {'on' if model.flash_attn else 'off'}",
        f"KV cache {kv_cache_type_name(model.type_k)}/{kv_cache_type_name(model.type_v)}",
    ]


def sampler_summary(sampler: SamplerSettings) -> str:
    """The sampler's name and the values it changes from llama.cpp's defaults."""
    changed = [
        f"{f.name} {getattr(sampler, f.name)}"
        for f in fields(sampler)
        if f.name not in ("name", "dry_sequence_breakers")
        and getattr(sampler, f.name) != getattr(_DEFAULT_SAMPLER, f.name)
    ]
    return sampler.name + ("\n  " + "\n  ".join(changed) if changed else "")


class ContextPane(Static):
    """``used``, ``limit`` and ``stats`` hold the numbers last shown: the tokens in the context
    window, its size, and the thread's ContextStats (what was left out, the whole history)."""

    def __init__(self, **kwargs) -> None:
        super().__init__("Loading…", **kwargs)
        self.used = 0
        self.limit = 0
        self.stats: ContextStats | None = None

    def on_mount(self) -> None:
        self.border_title = "Context"

    def refresh_from(self, thread: Thread, show_timings: bool = True) -> None:
        """Show the thread's numbers. ``show_timings=False`` leaves out speeds and times (they
        differ from run to run; snapshots need fixed text)."""
        model = thread.model
        self.stats = stats = thread.context_stats()
        self.used = used = stats.in_context
        self.limit = limit = stats.context_length
        lines: list[Content | str] = [
            Content.assemble(("Context ", "bold"), f"{used} / {limit} tokens"),
            Content.assemble((usage_bar(used, limit), "$accent"), f" {stats.fraction:.0%}"),
            f"History {stats.messages} messages · {stats.history_tokens} tokens",
        ]
        if stats.left_out:
            lines.append(
                Content.styled(
                    f"Left out: the {stats.left_out} oldest of {stats.messages} messages",
                    "$warning",
                )
            )
            if model.runs_in_process and not model.can_shift_context:
                lines.append(
                    Content.styled(
                        "This model's cache cannot shift: each drop evaluates the prompt again",
                        "$warning",
                    )
                )
        result = thread.last_result
        if result is not None:
            reply = f"Last reply {result.n_generated} tokens"
            report = result.prompt
            prompt = f"Prompt {report.evaluated} evaluated, {report.reused} reused"
            if report.shifted:
                prompt += f" ({report.shifted} shifted)"
            if show_timings:
                reply += f" · {result.tokens_per_second:.1f} tok/s"
                prompt += f" · {report.seconds:.2f} s"
            lines += [reply, prompt, f"Stopped by {result.stop_reason.replace('_', ' ')}"]
        choice = thread.format_choice
        lines += ["", Content.styled("Format", "bold"), choice.summary]
        if choice.warning:
            lines.append(Content.styled(visible(choice.warning), "$warning"))
        lines += [
            "",
            Content.styled("Model", "bold"),
            *model_facts(model),
            "",
            Content.styled("Sampler", "bold"),
            sampler_summary(thread.sampler),
        ]
        # The plain lines quote the file name, GGUF metadata, a server's replies and preset
        # values: shown through visible, as Content (never markup).
        self.update(
            Content("\n").join(Content(visible(x)) if isinstance(x, str) else x for x in lines)
        )
