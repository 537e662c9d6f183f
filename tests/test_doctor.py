"""``ezchat doctor`` against the real model and against real faults, and the terminal given
back when the app or the REPL dies from a signal that no Python code can catch."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from test_cli import assert_usage_error, run

from ezchat.cli import doctor
from ezchat.crashguard import RESET_SEQUENCE
from ezchat.engine import cpu

ROOT = Path(__file__).resolve().parent.parent

# A real illegal instruction: x86's ud2, executed from an executable page.
UD2 = """
import ctypes, mmap
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(b"\\x0f\\x0b")
ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(page)))()
"""
SELF_KILL = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"


def test_doctor_decodes_a_few_tokens_with_the_real_model():
    result = run("doctor")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("llama.cpp build: CPU : ") for line in lines), result.stdout
    assert any(line.startswith("threads (default): ") for line in lines)
    assert lines[-1].startswith("ok: llama.cpp decoded "), result.stdout


@pytest.mark.skipif(not cpu.is_x86(), reason="ud2 is an x86 instruction")
def test_a_child_dying_of_a_real_illegal_instruction_gives_one_line_and_exit_2(monkeypatch):
    # the real library's system-info line first, as the real self-check prints it
    code = doctor.SELF_CHECK_CODE.split("import ezchat as ez")[0] + UD2
    monkeypatch.setattr(doctor, "SELF_CHECK_CODE", code)
    result = run("doctor")
    assert_usage_error(result, "llama.cpp died with SIGILL", cpu.rebuild_command(), "this CPU has")


def test_a_build_with_amx_that_dies_is_blamed_on_amx(monkeypatch):
    fake_line = "print('system-info: CPU : AVX = 1 | AVX2 = 1 | AMX_INT8 = 1 |', flush=True)\n"
    monkeypatch.setattr(doctor, "SELF_CHECK_CODE", fake_line + SELF_KILL)
    monkeypatch.setattr(
        cpu, "cpu_flags", lambda cpuinfo=None: frozenset({"avx", "avx2", "amx_int8"})
    )
    result = run("doctor")
    assert_usage_error(result, "SIGILL", "AMX kernels", cpu.rebuild_command())


def test_a_build_for_another_cpu_names_what_this_one_lacks():
    line = doctor.explain_crash(
        signal.SIGILL, "CPU : AVX = 1 | AVX2 = 1 | AVX512 = 1 |", frozenset({"avx", "avx2"})
    )
    assert "built with AVX512, which this CPU" in line and "does not have" in line
    assert cpu.rebuild_command() in line
    assert "\n" not in line


def test_a_self_check_that_fails_without_a_signal_reports_its_last_line(monkeypatch):
    monkeypatch.setattr(doctor, "SELF_CHECK_CODE", "raise SystemExit('no model here')")
    result = run("doctor")
    assert_usage_error(result, "the self-check failed: no model here")


# --- the terminal after a fatal signal --------------------------------------------------------


def read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"never saw {marker!r}; got {seen[-400:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def read_to_end(fd: int, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every process on the terminal has gone
            break
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.parametrize(
    ("command", "ready", "fatal"),
    [
        (["-m", "ezchat"], b"\x1b[?1049h", signal.SIGSEGV),  # the app, on the alternate screen
        (["-m", "ezchat", "chat"], b"!help", signal.SIGILL),  # the REPL at its prompt
    ],
    ids=["app", "repl"],
)
@pytest.mark.slow
def test_a_fatal_signal_gives_the_terminal_back(command, ready, fatal, tmp_path):
    pid, fd = pty.fork()
    if pid == 0:  # the child: ezchat on a real terminal
        os.chdir(ROOT)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
        os.execve(sys.executable, [sys.executable, *command], env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        cooked = termios.tcgetattr(fd)
        read_until(fd, ready, timeout=60)
        while termios.tcgetattr(fd)[3] & termios.ICANON:  # until the program sets raw mode
            if select.select([fd], [], [], 0.05)[0]:  # drawing meanwhile: keep the pty drained
                os.read(fd, 65536)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1, "ezchat did not run under its guard"
        os.kill(int(children[0]), fatal)
        tail = read_to_end(fd)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + fatal
        text = tail.decode("utf-8", "replace")
        assert RESET_SEQUENCE.replace("\r\n", "") in text
        message = text.split(RESET_SEQUENCE.replace("\r\n", ""))[-1].strip().splitlines()
        assert len(message) == 1, message
        assert signal.Signals(fatal).name in message[0] and "ezchat doctor" in message[0]
        restored = termios.tcgetattr(fd)
        assert restored[3] == cooked[3], "the terminal was left in raw mode"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


@pytest.mark.slow
def test_a_model_file_cut_short_mid_reply_is_named_not_the_build(tmp_path, model_path):
    copy = tmp_path / "model.gguf"
    copy.write_bytes(model_path.read_bytes())
    os.mkfifo(tmp_path / "held")
    os.mkfifo(tmp_path / "release")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the REPL on a real terminal, on the copy, held at its first token
        os.chdir(ROOT)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TERM": "xterm-256color",
            "EZCHAT_GATE": f"token:1:{tmp_path}",
        }
        command = [sys.executable, "-m", "ezchat", "chat", "-m", str(copy), "-s", "GreedyDecoding"]
        os.execve(sys.executable, command, env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        read_until(fd, b"!help", timeout=60)
        while termios.tcgetattr(fd)[3] & termios.ICANON:  # until the prompt sets raw mode
            if select.select([fd], [], [], 0.05)[0]:
                os.read(fd, 65536)
        os.write(fd, b"Hello\r")
        assert (tmp_path / "held").read_text().startswith("token")  # mid-reply now
        os.truncate(copy, 4096)  # the weights llama.cpp mapped are gone from under it
        with open(tmp_path / "release", "w"):
            pass
        tail = read_to_end(fd, timeout=60)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + signal.SIGBUS
        text = tail.decode("utf-8", "replace")
        message = text.split(RESET_SEQUENCE.replace("\r\n", ""))[-1].strip().splitlines()
        assert len(message) == 1, message
        assert "SIGBUS" in message[0] and "model file" in message[0], message[0]
        assert "ezchat doctor" not in message[0]
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_a_model_file_cut_short_between_replies_is_one_line_with_piped_input(tmp_path, model_path):
    copy = tmp_path / "model.gguf"
    copy.write_bytes(model_path.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "ezchat", "chat", "-m", str(copy), "-s", "GreedyDecoding"]
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "context" in child.stdout.readline()  # the banner: the model is loaded
        os.truncate(copy, 4096)
        out, err = child.communicate("Hello\n", timeout=60)
    finally:
        child.kill()
    assert child.returncode != -signal.SIGBUS, err
    assert "the model file was cut short while loaded" in out + err
    assert "restore the file and load it again" in out + err
