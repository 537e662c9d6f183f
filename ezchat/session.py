"""What every interface does to start a chat: pick the model, format and sampler from the
command line, the config file and the defaults, then load them.

The TUI, the REPL, the CLI and the runners all start here, so the same choice of model or
preset means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .backends import RemoteModel
from .chat import formats, samplers
from .chat.samplers import SamplerSettings
from .chat.thread import Thread
from .engine.results import ProgressReport
from .settings.config import Config, load_config
from .settings.modelpath import resolve_model_path

if TYPE_CHECKING:
    from .engine.model import Model


@dataclass(slots=True)
class ChatOptions:
    """Choices for one session; ``None`` means: from the config file, else the default."""

    model: str | Path | None = None
    format: str | None = None
    sampler: str | None = None
    system: str | None = None
    context_length: int | None = None
    n_gpu_layers: int | None = None
    flash_attn: bool | None = None
    n_threads: int | None = None
    seed: int | None = None
    server: str | None = None
    # a server's limits (ezchat/backends/limits.py); None: the config file's, else the default
    timeout: float | None = None
    idle_timeout: float | None = None
    max_read_mb: float | None = None
    template_timeout: float | None = None
    template_memory_mb: float | None = None
    # the thinking switch for templates that take one; None: the template's default
    thinking: bool | None = None

    def with_config(self, config: Config | None = None) -> ChatOptions:
        """Fill what the user did not choose from the config file."""
        config = config or load_config()
        return replace(
            self,
            format=self.format or config.format,
            sampler=self.sampler or config.sampler,
            system=self.system if self.system is not None else config.system_prompt,
            context_length=self.context_length or config.context_length,
            n_gpu_layers=self.n_gpu_layers
            if self.n_gpu_layers is not None
            else config.n_gpu_layers,
            flash_attn=self.flash_attn if self.flash_attn is not None else config.flash_attn,
            n_threads=self.n_threads or config.n_threads,
            server=self.server or config.server,
            timeout=self.timeout or config.server_timeout,
            idle_timeout=self.idle_timeout or config.server_idle_timeout,
            max_read_mb=self.max_read_mb or config.server_max_read_mb,
            template_timeout=self.template_timeout or config.template_timeout,
            template_memory_mb=self.template_memory_mb or config.template_memory_mb,
            model=resolve_model_path(self.model, config.model)
            if not (self.server or config.server)
            else self.model,
        )


def load_model(options: ChatOptions, progress: ProgressReport | None = None) -> Model | RemoteModel:
    """Load the model the options name (call ``with_config`` first to apply the config file):
    a local GGUF file, or with ``server`` set, a model served over the OpenAI-compatible API.
    ``progress`` hears how much of a local file is loaded (see ``Model``)."""
    if options.server:
        return RemoteModel(
            options.server,
            model=str(options.model) if options.model else None,
            context_length=options.context_length,
            timeout=options.timeout,
            idle_timeout=options.idle_timeout,
            max_read_mb=options.max_read_mb,
            progress=progress,  # asked while connecting: the app's Quit stops it
        )
    from .engine.model import Model  # llama_cpp loads only when a local model does

    return Model(
        resolve_model_path(options.model),
        context_length=options.context_length,
        n_gpu_layers=options.n_gpu_layers or 0,
        flash_attn=flash_attention_for(options),
        n_threads=options.n_threads,
        seed=options.seed if options.seed is not None else -1,
        progress=progress,
    )


def flash_attention_for(options: ChatOptions) -> bool:
    """Flash attention as chosen, else on when layers are offloaded: on a GPU it decodes the
    default model 13% faster in llama-bench (925 against 818 tokens/s on an H100), while on
    this project's CPU it decodes no faster and evaluates prompts deep in a long chat slower."""
    if options.flash_attn is not None:
        return options.flash_attn
    return bool(options.n_gpu_layers)


def load_sampler(options: ChatOptions) -> SamplerSettings:
    sampler = samplers.load(options.sampler or samplers.DEFAULT_PRESET)
    if options.seed is not None:
        sampler.seed = options.seed
    return sampler


def make_thread(model: Model | RemoteModel, options: ChatOptions) -> Thread:
    """A Thread in the chosen format (default: the GGUF's own template) and preset, with the
    chosen system prompt replacing the format's default and the chosen thinking switch."""
    format_name = options.format or "auto"
    thread = Thread(
        model,
        format_name if format_name == "auto" else formats.load(format_name),
        load_sampler(options),
    )
    if options.system is not None:
        thread.set_system_prompt(options.system)
    if options.thinking is not None:  # asked for: refused in one line where there is no switch
        thread.switch_thinking(options.thinking)
    return thread
