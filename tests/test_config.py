from __future__ import annotations

import pytest

from ezchat.errors import UserFileError
from ezchat.settings.config import Config, config_path, load_config, save_config, update_config


def test_missing_file_gives_defaults() -> None:
    assert load_config() == Config()


def test_round_trip_with_keymap() -> None:
    config = Config(
        model="/m/x.gguf",
        theme="nord",
        context_length=4096,
        flash_attn=True,
        keymap={"stop": "escape", "reroll": "ctrl+r"},
        system_prompt='Say "hi"\nthen stop',
    )
    save_config(config)
    assert load_config() == config


def test_update_keeps_other_values() -> None:
    update_config(theme="gruvbox")
    update_config(sampler="MinPSampling")
    loaded = load_config()
    assert (loaded.theme, loaded.sampler) == ("gruvbox", "MinPSampling")


def test_unknown_key_names_file_line_and_valid_keys() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('theme = "nord"\ncolour = "red"\n')
    with pytest.raises(UserFileError) as caught:
        load_config()
    message = str(caught.value)
    assert f"{path}:2" in message and "'colour'" in message and "theme" in message


def test_wrong_type_is_named() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('context_length = "big"\n')
    with pytest.raises(UserFileError, match="context_length.*must be int"):
        load_config()
