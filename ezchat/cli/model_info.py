"""What a model file holds and whether llama.cpp runs here: ``ezchat info`` and ``ezchat
doctor``. Neither loads llama.cpp in this process but for its build line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..engine import cpu
from ..engine.gguf import GGUFInfo, read_gguf
from ..engine.memory import human_bytes
from ..safetext import json_text
from ..settings.config import load_config
from ..settings.modelpath import resolve_model_path
from .doctor import self_check
from .options import JsonOption, ModelOption, fail, root_model
from .tables import print_table, show_value


def info(
    ctx: typer.Context,
    model: ModelOption = None,
    metadata: Annotated[
        bool, typer.Option("--metadata/--no-metadata", help="also list every metadata key")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """What a GGUF file holds: size, quantisation, native context, and its metadata."""
    path = resolve_model_path(model or root_model(ctx), load_config().model)
    gguf = read_gguf(path)
    facts = gguf_facts(gguf)
    machine = machine_facts()
    if json_output:
        data: dict[str, Any] = {"facts": facts, "machine": machine}
        if metadata:
            data["metadata"] = gguf.metadata
        print(json_text(data, default=str))
        return
    print_table(["fact", "value"], [[key, show_value(value)] for key, value in facts.items()])
    print()
    print_table(
        ["this machine", "value"], [[key, show_value(value)] for key, value in machine.items()]
    )
    if metadata:
        print()
        rows = [[key, show_value(value, 70)] for key, value in gguf.metadata.items()]
        print_table(["metadata key", "value"], rows)


def cpu_facts() -> dict[str, str]:
    """The CPU and the thread count ezchat picks on it: read without loading llama.cpp."""
    threads = cpu.default_thread_count()
    return {
        "threads (default)": f"{threads.count}: {threads.how}",
        "CPU": cpu.cpu_model(),
        "CPU instruction sets": " ".join(cpu.cpu_instruction_sets()) or "unknown",
    }


def machine_facts() -> dict[str, Any]:
    """What decides how fast, and whether, llama.cpp runs here: threads, its build, the CPU."""
    from ..engine.model import llama_system_info

    return {"llama.cpp build": llama_system_info(), **cpu_facts()}


def doctor(ctx: typer.Context, model: ModelOption = None) -> None:
    """Check that llama.cpp, as built here, runs on this CPU: decode a few tokens in a child."""
    path = resolve_model_path(model or root_model(ctx), load_config().model)
    # this process never loads llama.cpp: the child's system-info line names the build
    for key, value in cpu_facts().items():
        print(f"{key}: {value}")
    result = self_check(str(path))
    if result.system_info:
        print(f"llama.cpp build: {result.system_info}")
    if not result.ok:
        raise fail(result.message)
    print(result.message)


def gguf_facts(gguf: GGUFInfo) -> dict[str, Any]:
    template = gguf.chat_template
    return {
        "file": str(gguf.path),
        "file size": human_bytes(gguf.path.stat().st_size),
        "name": gguf.metadata.get("general.name", gguf.path.stem),
        "architecture": gguf.architecture,
        "parameters": _human_count(gguf.n_params),
        "quantisation": gguf.quantization,
        "native context": gguf.arch_value("context_length", "unknown"),
        "RoPE base": gguf.arch_value("rope.freq_base", 10000.0),
        "layers": gguf.arch_value("block_count", "unknown"),
        "embedding size": gguf.arch_value("embedding_length", "unknown"),
        "attention heads": gguf.arch_value("attention.head_count", "unknown"),
        "vocabulary": gguf.array_lengths.get("tokenizer.ggml.tokens", "unknown"),
        "chat template": f"yes ({len(template)} characters)" if template else "no",
        **_auto_format_facts(gguf),
        "GGUF version": gguf.version,
    }


def _auto_format_facts(gguf: GGUFInfo) -> dict[str, str]:
    """Which format ``--format auto`` picks for the file and why, and whether it suits it."""
    from ..chat.auto_format import file_summary
    from ..engine.gguf import special_tokens

    summary, warning = file_summary(gguf.metadata, gguf.path.name, special_tokens(gguf.path))
    return {"format (auto)": summary, **({"format warning": warning} if warning else {})}


def _human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit} ({n:,})"
    return str(n)
