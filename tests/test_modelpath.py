"""Which model file ezchat loads: explicit path, then EZCHAT_MODEL, then the config, then the
bundled default."""

from __future__ import annotations

from pathlib import Path

import pytest

import ezchat as ez
from ezchat.settings.modelpath import resolve_model_path


def test_default_model_is_the_bundled_gguf(model_path: Path) -> None:
    assert model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and model_path.is_file()
    assert resolve_model_path() == model_path


def test_order_explicit_env_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env, configured = tmp_path / "a.gguf", tmp_path / "b.gguf", tmp_path / "c.gguf"
    assert resolve_model_path(None, str(configured)) == configured
    monkeypatch.setenv("EZCHAT_MODEL", str(env))
    assert resolve_model_path(None, str(configured)) == env
    assert resolve_model_path(explicit, str(configured)) == explicit


def test_missing_model_file_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ez.ModelLoadError) as error:
        ez.Model(missing)
    message = str(error.value)
    assert str(missing) in message and "\n" not in message
