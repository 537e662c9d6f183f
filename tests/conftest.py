"""Shared fixtures: the real default model, loaded once per session, and a private user dir."""

from __future__ import annotations

from pathlib import Path

import pytest

import ezchat as ez


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config/data/cache dirs, so nothing touches the user's files."""
    home = tmp_path / "ezchat-home"
    monkeypatch.setenv("EZCHAT_HOME", str(home))
    monkeypatch.delenv("EZCHAT_MODEL", raising=False)
    return home


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ez.default_model_path()


@pytest.fixture(scope="session")
def model(model_path: Path) -> ez.Model:
    loaded = ez.Model(model_path, context_length=2048, seed=1234)
    yield loaded
    loaded.unload()


@pytest.fixture
def greedy() -> ez.SamplerSettings:
    sampler = ez.samplers.load("GreedyDecoding")
    sampler.max_len_tokens = 48
    return sampler


CHAT_PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def chat_prompt() -> str:
    """A raw ChatML prompt whose greedy answer names Paris."""
    return CHAT_PROMPT
