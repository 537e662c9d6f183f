"""Give the terminal back when the app or the REPL dies from a signal Python cannot catch.

A SIGILL or SIGSEGV inside llama.cpp (a build for another CPU, ggml's AMX kernels on some
Xeons) kills the process with no Python code running: the full-screen app leaves the terminal
in raw mode, on the alternate screen, with mouse reporting on. A handler inside the dying
process would run in a signal context, in whatever state llama.cpp left it. So the process
forks first: the child runs the app, the parent only waits, and when the child dies by a signal
the parent, which is intact, restores the terminal settings it saved, switches off what the
app switched on, and says in one line what happened and what to run.

POSIX and a real terminal only; elsewhere ``guard_terminal`` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

# What a full-screen app may have switched on, switched off: the alternate screen, a hidden
# cursor, mouse reporting (every mode), bracketed paste, focus events, the kitty keyboard
# protocol, and any colours or attributes left set.
RESET_SEQUENCE = (
    "\x1b[?1049l\x1b[?25h"
    "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"
    "\x1b[?2004l\x1b[?1004l\x1b[<u\x1b[0m\r\n"
)

# Ends that are the user's or the system's doing: restore, but no crash message.
_QUIET_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def crash_line(what: str, signum: int) -> str:
    name = signal_name(signum)
    if signum == signal.SIGKILL:
        cause = "it was killed (SIGKILL), most likely for running out of memory"
    elif signum == getattr(signal, "SIGBUS", None):
        # llama.cpp maps the model file into memory: a read past the end of a file that was
        # cut short after it was mapped is a SIGBUS, not a fault of the build
        cause = (
            "it died with SIGBUS, a read of a file that changed under ezchat: most likely the "
            "model file was cut short or replaced while it was loaded; check the file and load "
            "it again"
        )
    else:
        cause = (
            f"it died with {name}, most likely inside llama.cpp; run 'ezchat doctor' to check "
            "that its build runs on this CPU"
        )
    return f"ezchat: {what} ended without closing: {cause}; the terminal has been restored"


def _hang_up_when_parent_dies(parent: int) -> None:
    """In the child: get SIGHUP if the guarding parent dies (killed on its own), so the app
    ends as it does when its terminal closes, saving the reply it is writing, instead of
    running on with no one to give the terminal back. Linux only (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGHUP), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGHUP)


def guard_terminal(what: str) -> None:
    """Fork; return in the child, which goes on to run ``what``. The parent never returns: it
    waits for the child and exits with its status (128 + the signal for a death by signal)."""
    # Textual draws on stderr, prompt-toolkit on stdout: reset whichever is the terminal.
    screens = [stream for stream in (sys.stderr, sys.stdout) if stream.isatty()]
    if os.name != "posix" or not (sys.stdin.isatty() and screens):
        return
    import termios

    fd = sys.stdin.fileno()
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        _hang_up_when_parent_dies(parent)
        return
    # Ctrl-C and Ctrl-\ reach the child through the terminal's process group; the parent only
    # passes on what is sent to it by pid.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    for forwarded in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(forwarded, lambda signum, _frame: os.kill(child, signum))
    while True:
        try:
            _, status = os.waitpid(child, os.WUNTRACED)
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if os.WIFSTOPPED(status):
            # The app suspended itself (Ctrl-Z): stop too, so the shell gets the terminal back;
            # its SIGCONT to the process group resumes both.
            os.kill(os.getpid(), signal.SIGSTOP)
            continue
        break
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    signum = os.WTERMSIG(status)
    with contextlib.suppress(termios.error):
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
    message = RESET_SEQUENCE
    if signum not in _QUIET_SIGNALS:
        message += crash_line(what, signum) + "\n"
    os.write(screens[0].fileno(), message.encode())
    os._exit(128 + signum)
