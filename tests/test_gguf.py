"""Bad model files become one-line ModelLoadErrors before llama.cpp can abort on them."""

from __future__ import annotations

from pathlib import Path

import pytest

import ezchat as ez
from ezchat.engine.gguf import read_gguf


def test_reads_default_model_facts(model_path: Path) -> None:
    info = read_gguf(model_path)
    assert info.architecture == "llama"
    assert info.arch_value("context_length") == 8192
    assert info.quantization == "Q4_1"
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert 130_000_000 < info.n_params < 140_000_000
    assert info.array_lengths["tokenizer.ggml.tokens"] == 49152


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ez.ModelLoadError, match="no such model file") as caught:
        ez.Model(missing)
    assert str(missing) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "notes.gguf"
    fake.write_text("these are not the weights you are looking for\n" * 10)
    with pytest.raises(ez.ModelLoadError, match="not a GGUF model file") as caught:
        ez.Model(fake)
    assert str(fake) in str(caught.value)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ez.ModelLoadError, match="is a folder"):
        ez.Model(tmp_path)


@pytest.mark.parametrize("fraction", [0.0001, 0.01, 0.5, 0.999])
def test_truncated_file(tmp_path: Path, model_path: Path, fraction: float) -> None:
    data = model_path.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ez.ModelLoadError, match="truncated") as caught:
        ez.Model(cut)
    assert str(cut) in str(caught.value)


def test_tiny_file_with_magic(tmp_path: Path) -> None:
    stub = tmp_path / "stub.gguf"
    stub.write_bytes(b"GGUF\x03\x00")
    with pytest.raises(ez.ModelLoadError, match="truncated"):
        ez.Model(stub)


def test_wrong_version(tmp_path: Path, model_path: Path) -> None:
    data = bytearray(model_path.read_bytes()[:4096])
    data[4:8] = (99).to_bytes(4, "little")
    bad = tmp_path / "future.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(ez.ModelLoadError, match="unsupported GGUF version 99"):
        ez.Model(bad)


def nested_arrays_gguf(path: Path, depth: int) -> Path:
    """A GGUF header whose one metadata value is an array of an array of ... ``depth`` deep."""
    import struct

    key = b"evil.nested"
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    levels = struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * (depth - 1)
    data = head + levels + struct.pack("<IQ", 5, 0)
    path.write_bytes(data + bytes(-len(data) % 32))  # up to where tensor data would start
    return path


def test_deeply_nested_arrays(tmp_path: Path) -> None:
    """200,000 levels were 200,000 Python frames: a RecursionError in every command."""
    from test_cli import assert_usage_error, run

    evil = nested_arrays_gguf(tmp_path / "evil.gguf", 200_000)
    with pytest.raises(ez.ModelLoadError, match="'evil.nested' nests arrays more than 16 deep"):
        ez.Model(evil)
    for command in (["info", "-m", str(evil)], ["generate", "hi", "-m", str(evil)], [str(evil)]):
        assert_usage_error(run(*command), str(evil), "nests arrays more than 16 deep")
    shallow = read_gguf(nested_arrays_gguf(tmp_path / "shallow.gguf", 16))
    value = shallow.metadata["evil.nested"]
    for _ in range(15):
        (value,) = value
    assert value == []
