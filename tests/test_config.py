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


def test_every_user_file_reader_fails_with_the_same_one_line(tmp_path) -> None:
    # One helper (settings/userfiles.py) reads every file a user names: a preset or format,
    # a chat file, a runner's JSONL or CSV. Each failure is one line naming the file and the fix.
    from ezchat.runners.data import examples_from_csv, read_jsonl
    from ezchat.settings.userfiles import read_toml, read_user_text
    from ezchat.storage.chatfile import read_chat_file

    missing = tmp_path / "missing.txt"
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"input\ncaf\xe9\n")
    for read in (read_user_text, read_toml, read_chat_file, read_jsonl, examples_from_csv):
        with pytest.raises(UserFileError) as missing_error:
            read(missing)
        assert str(missing_error.value) == f"{missing}: no such file; check the path"
        with pytest.raises(UserFileError) as folder_error:
            read(tmp_path)
        assert str(folder_error.value).startswith(f"{tmp_path}: is a folder; give the path of a")
    # A CSV that is not UTF-8 was a UnicodeDecodeError (a traceback) before the helper.
    with pytest.raises(UserFileError, match=r"latin1\.csv: not UTF-8 text; save it as UTF-8"):
        examples_from_csv(latin1)


def test_user_text_reads_line_ends_as_read_text_does(tmp_path) -> None:
    from ezchat.settings.userfiles import read_user_text

    crlf = tmp_path / "crlf.toml"
    crlf.write_bytes(b"a = 1\r\nb = 2\rc = 3\n")
    assert read_user_text(crlf) == crlf.read_text(encoding="utf-8")
    assert read_user_text(crlf, keep_newlines=True) == "a = 1\r\nb = 2\rc = 3\n"
