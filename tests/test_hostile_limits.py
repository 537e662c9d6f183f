"""Text and answers that ezchat did not write are bounded in size before the work on them is
done: a server's compressed answer, a huge prompt on stdin, a huge system prompt. Memory
cases run the real CLI under an address-space limit (``ulimit -v``) far below what the input
would take unbounded. And a Ctrl-C at any moment of the command's start is one line."""

from __future__ import annotations

import gzip
import os
import resource
import signal
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import ROOT, one_error_line, run_ezchat
from hostile_servers import DOUBLE_GZIP, hostile_server

import ezchat as ez
from ezchat.backends import content_encoding
from ezchat.settings import paths

# What ezchat takes with the model loaded is under 1 GiB.
ADDRESS_SPACE = 1400 * 2**20


def limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def ezchat_limited(*args: str, **run: Any) -> Any:
    return run_ezchat(*args, timeout=120, preexec_fn=limited_memory, **run)


# --- compressed answers ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_double_gzip_answer_is_stopped_at_the_read_limit() -> None:
    with hostile_server(DOUBLE_GZIP) as server:
        done = ezchat_limited("generate", "--server", server.url, "--max-read-mb", "1", "Hello")
    one_error_line(done, server.url, "answered more than 1 MiB", "--max-read-mb")


def test_compressed_layers_come_out_a_bounded_piece_at_a_time() -> None:
    text = b"Hello, world! " * 100_000
    twice = gzip.compress(zlib.compress(text))
    pieces = list(content_encoding.decoded([twice[:10], twice[10:]], ["deflate", "gzip"]))
    assert b"".join(pieces) == text
    assert max(len(piece) for piece in pieces) <= content_encoding.PIECE


@pytest.mark.parametrize(
    "header", ["br", "gzip, gzip, gzip", "zstd, gzip"], ids=["unasked", "three-layers", "mixed"]
)
def test_an_encoding_ezchat_did_not_ask_for_is_refused(header: str) -> None:
    with pytest.raises(httpx.DecodingError) as refused:
        content_encoding.encodings(header)
    assert "Content-Encoding" in str(refused.value)


# --- prompts longer than any context -------------------------------------------------------------


def test_a_50_mb_prompt_on_stdin_is_refused_by_its_length_in_one_line() -> None:
    text = "word " * 10_000_000
    done = ezchat_limited("generate", "-n", "3", "-", input=text)
    one_error_line(done, "the prompt is 50,000,000 characters", "8192 tokens", "shorten it")


def test_a_system_prompt_longer_than_any_context_is_refused_by_its_length() -> None:
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'system_prompt = "{"word " * 1_500_000}"\n', encoding="utf-8")
    done = ezchat_limited("generate", "-f", "chatml", "-n", "3", "Hello")
    one_error_line(done, "the system prompt is 7,500,000 characters", "shorten it")


def test_an_old_message_longer_than_the_context_is_left_out_untokenized(model: ez.Model) -> None:
    thread = ez.Thread(model, "chatml", ez.samplers.load("GreedyDecoding"))
    long_text = "word " * 2_000_000
    thread.add_message("user", long_text)
    thread.add_message("bot", "That is long.")
    thread.add_message("user", "Hello")
    plan = thread.plan_prompt()
    assert plan.dropped == 1  # only the long message
    assert long_text not in thread._content_tokens  # never tokenized
    assert model.detokenize(plan.tokens, special=True).endswith(
        "user\nHello<|im_end|>\n<|im_start|>assistant\n"
    )


# --- Ctrl-C while ezchat's modules import ------------------------------------------------------

# Installed in the child through PYTHONPATH: it holds the import of one module at a FIFO, the
# rendezvous a test picks, as ezchat's gates hold work in progress.
HOLD_AN_IMPORT = """
import importlib.abc, os, sys

class HoldImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == os.environ["HOLD_IMPORT"]:
            sys.meta_path.remove(self)
            with open(os.environ["HOLD_FOLDER"] + "/held", "w") as held:
                held.write(name)
            with open(os.environ["HOLD_FOLDER"] + "/release") as release:
                release.read()
        return None

sys.meta_path.insert(0, HoldImport())
"""


def test_ctrl_c_while_the_command_imports_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(HOLD_AN_IMPORT, encoding="utf-8")
    os.mkfifo(tmp_path / "held")
    os.mkfifo(tmp_path / "release")
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "HOLD_IMPORT": "ezchat.backends",
        "HOLD_FOLDER": str(tmp_path),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "ezchat", "generate", "Hello"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert (tmp_path / "held").read_text() == "ezchat.backends"  # importing now
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert stderr == "ezchat: interrupted\n"
    assert child.returncode == -signal.SIGINT
