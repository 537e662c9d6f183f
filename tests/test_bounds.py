"""Files that never end or cannot be written: a FIFO or a device given as the model, a batch
OUTPUT that is /dev/full or fills up mid-run, an OUTPUT in a folder that does not exist. Each
ends in one line (exit 2 from the CLI) within a bound, and nothing written is lost."""

from __future__ import annotations

import json
import os
import resource
import signal
import threading
from pathlib import Path

import pytest
from cli_support import one_error_line, run_ezchat

import ezchat as ez
from ezchat.engine.gguf import read_gguf

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--max-tokens", "4", "-c", "512", "-q", "--no-cache"]


def _prompts(path: Path, count: int) -> Path:
    questions = ["Say hello.", "Name a colour.", "What is 2+2?", "Name a fruit."]
    path.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": questions[i]}) + "\n" for i in range(count))
    )
    return path


# --- a model path that is not a regular file ------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "x.gguf"
    os.mkfifo(path)
    return path


def _refused_without_waiting(fifo: Path) -> str:
    """Read the FIFO as a model in a thread: a reader that opens it would wait for a writer
    forever, so a writer is let in after the bound to free the thread, and the test fails."""
    outcome: dict[str, BaseException] = {}

    def load() -> None:
        try:
            ez.Model(fifo)
        except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
            outcome["error"] = exc

    loading = threading.Thread(target=load)
    loading.start()
    loading.join(5)
    if loading.is_alive():
        with open(fifo, "wb"):
            pass
        loading.join()
        pytest.fail(f"{fifo} was opened and waited on instead of being refused")
    error = outcome["error"]
    assert isinstance(error, ez.ModelLoadError), repr(error)
    return str(error)


def test_a_fifo_as_the_model_is_refused_before_opening(fifo: Path) -> None:
    message = _refused_without_waiting(fifo)
    assert "\n" not in message and str(fifo) in message and "named pipe (FIFO)" in message
    with pytest.raises(ez.ModelLoadError, match="character device"):
        read_gguf("/dev/zero")


@pytest.mark.slow
def test_a_fifo_as_the_model_in_the_cli(fifo: Path, isolated_home: Path) -> None:
    for command in (["info", "-m", str(fifo)], ["generate", "-m", str(fifo), "hi"]):
        one_error_line(run_ezchat(*command), str(fifo), "named pipe (FIFO)")


# --- batch OUTPUT ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_into_dev_full_stops_with_one_line(tmp_path: Path, isolated_home: Path) -> None:
    """/dev/full reads as endless zeros and refuses every write: it is not read for ids to
    resume (that read never ended), and the first failed write stops the run."""
    source = _prompts(tmp_path / "in.jsonl", 2)
    result = run_ezchat("batch", str(source), "-o", "/dev/full", *FAST)
    one_error_line(result, "cannot write /dev/full", "No space left on device", "after 0")


def _limit_file_size(limit: int):
    def apply() -> None:
        # a write past the limit then fails with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_batch_output_that_fills_up_keeps_what_was_written_and_resumes(
    tmp_path: Path, isolated_home: Path
) -> None:
    source = _prompts(tmp_path / "in.jsonl", 3)
    first = tmp_path / "measure.jsonl"
    assert run_ezchat("batch", str(source), "-o", str(first), *FAST).returncode == 0
    # room for any one line and 20 bytes more: the first line to finish fits, the next not
    room = max(len(line.encode()) for line in first.read_text().splitlines()) + 1 + 20

    output = tmp_path / "out.jsonl"
    result = run_ezchat(
        "batch",
        str(source),
        "-o",
        str(output),
        *FAST,
        preexec_fn=_limit_file_size(room),
    )
    one_error_line(result, f"cannot write {output}", "after 1 responses", "run again")
    kept = output.read_text().split("\n")
    assert json.loads(kept[0])["id"] in {"q0", "q1", "q2"}
    assert len(output.read_bytes()) == room  # the second line was cut where the limit is

    again = run_ezchat("batch", str(source), "-o", str(output), *FAST)
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()[:1]]
    rows += [json.loads(line) for line in output.read_text().splitlines()[2:]]
    assert sorted(row["id"] for row in rows) == ["q0", "q1", "q2"]


@pytest.mark.slow
def test_batch_output_folder_must_exist_unless_mkdir(tmp_path: Path, isolated_home: Path) -> None:
    source = _prompts(tmp_path / "in.jsonl", 1)
    output = tmp_path / "missing" / "deeper" / "out.jsonl"
    result = run_ezchat("batch", str(source), "-o", str(output), *FAST)
    one_error_line(result, str(output.parent), "does not exist", "--mkdir")
    assert not (tmp_path / "missing").exists()

    made = run_ezchat("batch", str(source), "-o", str(output), "--mkdir", *FAST)
    assert made.returncode == 0, made.stderr
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == ["q0"]
