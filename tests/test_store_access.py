"""Who may write the chats file: a file or folder the user cannot write is named as such, and a
chat one process has open is refused to another (an advisory lock the OS drops on exit)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ezchat.storage.chatlocks import ChatLocks

ROOT = Path(__file__).resolve().parent.parent

# Runs where permissions apply: root may write anything, so as root the probe runs without
# the capabilities that override file permissions.
PERMISSIONS_PROBE = """
import os, sys
from ezchat.errors import StoreError
from ezchat.storage.store import ChatStore
base = sys.argv[1]
folder = os.path.join(base, "ro-folder")
os.mkdir(folder)
os.chmod(folder, 0o555)
try:
    ChatStore(os.path.join(folder, "chats.sqlite3"))
except StoreError as error:
    print("folder:", error)
writable = os.path.join(base, "ro-file")
os.mkdir(writable)
path = os.path.join(writable, "chats.sqlite3")
ChatStore(path).close()
os.chmod(path, 0o444)
try:
    ChatStore(path)
except StoreError as error:
    print("file:", error)
"""


def _where_permissions_apply() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be made to apply")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_a_read_only_folder_or_file_is_named_as_such() -> None:
    base = tempfile.mkdtemp(prefix="ezchat-perm-")
    try:
        os.chmod(base, 0o777)
        result = subprocess.run(
            [*_where_permissions_apply(), sys.executable, "-c", PERMISSIONS_PROBE, base],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=base,
        )
    finally:
        subprocess.run(["chmod", "-R", "u+w", base], check=False)
        subprocess.run(["rm", "-rf", base], check=False)
    assert result.returncode == 0, result.stderr
    folder_line, file_line = result.stdout.splitlines()
    assert folder_line.startswith("folder: cannot create ")
    assert "ro-folder is not writable" in folder_line
    assert file_line.startswith("file: ") and "chats.sqlite3 is read-only" in file_line
    for line in (folder_line, file_line):
        assert "not a readable ezchat chat store" not in line
        assert "move it aside" not in line


HOLDER = """
import sys
from pathlib import Path
from ezchat.storage.chatlocks import ChatLocks
locks = ChatLocks(Path(sys.argv[1]))
print(locks.claim(7), flush=True)
sys.stdin.read()  # holds the claim until the test kills this process
"""


def test_a_chat_claimed_by_another_process_is_refused_until_it_exits(tmp_path) -> None:
    store_path = tmp_path / "chats.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store_path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        mine = ChatLocks(store_path)
        assert mine.claim(7) is False
        assert mine.claim(8) is True  # other chats are free
        os.kill(holder.pid, signal.SIGKILL)  # however it ends, the OS drops its lock
        holder.wait()
        assert mine.claim(7) is True
        # within one process, two holders exclude each other too (two apps in one process)
        assert ChatLocks(store_path).claim(7) is False
        mine.release(7)
        assert ChatLocks(store_path).claim(7) is True
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
