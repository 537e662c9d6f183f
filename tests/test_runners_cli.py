"""``ezchat batch`` end to end, as a subprocess on the real model: output lines, malformed
input lines, typed output, and resuming after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from gates import ProcessHold
from typer.testing import CliRunner

from ezchat.cli.batch import register

ROOT = Path(__file__).resolve().parent.parent


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, EZCHAT_HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("EZCHAT_MODEL", None)
    return env


def _batch(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ezchat.cli.batch", *args],
        cwd=ROOT,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_register_adds_batch_to_an_app() -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    result = CliRunner().invoke(app, ["batch", "--help"])
    assert result.exit_code == 0
    assert "--output-type" in result.output and "--template" in result.output


@pytest.mark.slow
def test_batch_writes_a_line_per_prompt_and_reports_bad_lines(
    tmp_path: Path, isolated_home: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"id": "greet", "prompt": "Say hello.", "metadata": {"row": 1}}),
                "{not json",
                json.dumps({"prompt": "What is 2+2?", "system": "Answer with a number."}),
                json.dumps({"id": 5, "text": "no prompt key"}),
                "",
                json.dumps({"prompt": "Name a colour.", "topic": "art"}),
                json.dumps({"id": "greet", "prompt": "Same id again."}),
                json.dumps({"id": "long", "prompt": "word " * 2500}),
            ]
        )
        + "\n"
    )
    output = tmp_path / "out.jsonl"
    result = _batch(
        isolated_home, str(source), "-o", str(output), "--max-tokens", "12", "-c", "1024", "-q"
    )
    assert result.returncode == 1, result.stderr
    stderr = result.stderr
    assert f"{source}:2: not valid JSON" in stderr
    assert f'{source}:4: needs a "prompt" string' in stderr
    assert f"{source}:7: id 'greet' repeats line 1" in stderr
    assert f"{source}:8: skipped: " in stderr and "the context holds 1024" in stderr
    assert (
        "wrote 4 responses" in stderr
        and "1 skipped" in stderr
        and "3 input lines unusable" in stderr
    )
    assert "Traceback" not in stderr

    rows = {row["id"]: row for row in _lines(output)}
    assert set(rows) == {"greet", 3, 6, "long"}  # ids, or line numbers where none was given
    greet = rows["greet"]
    assert greet["line"] == 1 and greet["metadata"] == {"row": 1} and greet["response"]
    assert greet["prompt_tokens"] > 0 and 0 < greet["completion_tokens"] <= 12
    assert greet["stop_reason"] in ("stop_token", "length") and greet["cached"] is False
    assert rows[3]["system"] == "Answer with a number."
    assert rows[6]["context"] == {"topic": "art"}
    assert "context holds" in rows["long"]["skipped"] and "response" not in rows["long"]


@pytest.mark.slow
def test_typed_output_and_user_errors(tmp_path: Path, isolated_home: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"prompt": "Is the sky blue?"}) + "\n")
    output = tmp_path / "out.jsonl"
    result = _batch(
        isolated_home, str(source), "-o", str(output), "--output-type", '{"answer": "bool"}', "-q"
    )
    assert result.returncode == 0, result.stderr
    [row] = _lines(output)
    assert type(row["value"]["answer"]) is bool
    assert json.loads(row["response"]) == row["value"] and row["cut_off"] is False

    bad_type = _batch(
        isolated_home, str(source), "-o", str(output), "--output-type", '{"a": "num"}'
    )
    assert bad_type.returncode == 2
    assert bad_type.stderr.strip().splitlines() == [
        "ezchat batch: error: unknown output type 'num' for 'a': use int, float, bool, str or "
        "str[N] (at most N characters), list[T] or list[T, N] (at most N items), or a dict of "
        "fields"
    ]
    missing = _batch(isolated_home, str(tmp_path / "nope.jsonl"), "-o", str(output))
    assert missing.returncode == 2 and "nope.jsonl: no such file; check the path" in missing.stderr
    bad_template = _batch(isolated_home, str(source), "-o", str(output), "--template", "nope")
    assert bad_template.returncode == 2 and "unknown template 'nope'" in bad_template.stderr


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path, isolated_home: Path) -> None:
    source = tmp_path / "in.jsonl"
    prompts = [{"id": f"q{i}", "prompt": f"Count from {i} to {i + 20}."} for i in range(10)]
    source.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), "--max-tokens", "24", "-p", "2", "-c", "1024", "-q"]

    gate = ProcessHold(tmp_path / "gate", "response", 2)  # held once 2 lines are written
    process = subprocess.Popen(
        [sys.executable, "-m", "ezchat.cli.batch", *args],
        cwd=ROOT,
        env={**_env(isolated_home), **gate.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert gate.wait_held(process) == "response 2"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "run again to continue" in stderr
    first = _lines(output)  # every line written is complete JSON
    assert len(first) == 2

    result = _batch(isolated_home, *args)
    assert result.returncode == 0, result.stderr
    assert "were there already" in result.stderr
    rows = _lines(output)
    assert sorted(row["id"] for row in rows) == sorted(p["id"] for p in prompts)  # each once
    assert rows[: len(first)] == first
    assert all(row["response"] for row in rows)

    again = _batch(isolated_home, *args)
    assert again.returncode == 0 and "nothing to do: 10 of 10 ids are already in" in again.stderr
    assert _lines(output) == rows


@pytest.mark.slow
def test_a_line_that_is_not_text_is_one_bad_record(tmp_path: Path, isolated_home: Path) -> None:
    """A lone surrogate aborted the whole batch with a traceback, and one non-UTF-8 byte
    rejected the whole file without a line number; each is now a bad line like the others."""
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": "ok", "prompt": "Say hello."}).encode(),
        b'{"id": "lone", "prompt": "half a pair \\ud800 here"}',
        b'{"id": "meta", "prompt": "Say hi.", "metadata": {"k": ["\\udfff"]}}',
        b'{"id": "latin1", "prompt": "caf\xe9"}',
        json.dumps({"id": "also ok", "prompt": "Name a colour."}).encode(),
    ]
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.jsonl"
    result = _batch(isolated_home, str(source), "-o", str(output), "--max-tokens", "4", "-q")
    assert result.returncode == 1, result.stderr
    stderr = result.stderr
    assert "Traceback" not in stderr
    assert f"{source}:2: in a JSON string, \\ud800 is half of a UTF-16 surrogate pair" in stderr
    assert f"{source}:3: in a JSON string, \\udfff is half of" in stderr
    assert (
        f"{source}:4: byte offset 31 is 0xe9, which is not UTF-8 text; convert it to UTF-8"
        in stderr
    )
    assert "wrote 2 responses" in stderr and "3 input lines unusable" in stderr
    assert {row["id"] for row in _lines(output)} == {"ok", "also ok"}
