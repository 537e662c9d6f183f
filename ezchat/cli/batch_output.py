"""``ezchat batch``'s OUTPUT.jsonl: its folder checked, the ids it already answers (to resume),
and the file held for appending by one run at a time.

Two runs appending to one OUTPUT would each answer every prompt the other had not finished
when it started: duplicates, with no warning. A run holds an advisory lock (``flock``) on
OUTPUT from before it reads the finished ids until it ends, and a second run is refused in one
line. The operating system drops the lock when the run exits however it exits.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import EzChatError
from ..runners.data import read_jsonl

try:
    import fcntl
except ImportError:  # Windows: runs are not guarded against each other
    fcntl = None  # type: ignore[assignment]


class OutputFailed(EzChatError):
    """Writing OUTPUT failed (a full disk, a file size limit); the run stops."""


class OutputBusy(EzChatError):
    """Another run holds OUTPUT."""


def finished_ids(output: Path, retry_failed: bool) -> set[str]:
    """Ids already answered in OUTPUT (with --retry-failed, skipped and failed ones are not
    counted as answered). A damaged line (a run killed mid-write) is ignored. Only a regular
    file is read: a pipe or a device (/dev/stdout, /dev/full) holds nothing to resume, and
    reading /dev/full or /dev/zero never ends."""
    if not output.is_file():
        return set()
    records, _damaged = read_jsonl(output)
    done = set()
    for _line, record in records:
        if "id" not in record:
            continue
        if retry_failed and ("skipped" in record or "error" in record):
            continue
        done.add(str(record["id"]))
    return done


def check_output_folder(output: Path, make_folder: bool) -> None:
    """OUTPUT's folder must exist, unless --mkdir asks for it: a typo in the path should not
    create folders somewhere unexpected."""
    folder = output.parent
    if folder.is_dir():
        return
    if folder.exists():
        raise EzChatError(f"{output}: {folder} is not a folder; pick another -o path")
    if not make_folder:
        raise EzChatError(
            f"{output}: the folder {folder} does not exist; create it, or pass --mkdir"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EzChatError(
            f"{output}: cannot create the folder {folder} ({exc.strerror or exc})"
        ) from None


class OutputFile:
    """OUTPUT opened for appending, unbuffered and held by this run alone: a line is on disk
    (or refused) as soon as it is written, and a failed write leaves nothing in a buffer that
    closing would retry. Open it before reading the finished ids, so that no other run
    answers them meanwhile."""

    def __init__(self, output: Path) -> None:
        self.path = output
        try:
            self._file = output.open("ab", buffering=0)
        except OSError as exc:
            raise EzChatError(
                f"{output}: cannot open it for writing ({exc.strerror or exc}); pick another "
                "-o path"
            ) from None
        try:
            regular = self._hold()
            if regular and not _ends_with_newline(output):
                self.write_line("")  # the last run was killed mid-line: start a fresh line
        except BaseException:
            self._file.close()
            raise

    def _hold(self) -> bool:
        """Lock OUTPUT for this run; whether it is a regular file (a pipe or a device is
        neither locked nor resumed)."""
        descriptor = self._file.fileno()
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return False
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputBusy(
                    f"{self.path} is being written by another ezchat batch run; wait for it "
                    "to end (then run again to add what it left), or pick another -o path"
                ) from None
            except OSError:
                pass  # a file system without flock: go on unguarded
        return True

    def write_line(self, text: str) -> None:
        data = memoryview((text + "\n").encode("utf-8"))
        while data:  # a raw write may take only part, as a disk fills up
            data = data[self._file.write(data) :]

    def close(self) -> None:
        self._file.close()  # closing the file drops its lock

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    """Whether the file is empty or its last byte is a newline (or it cannot be read: then
    its lines are left as they are)."""
    try:
        with path.open("rb") as file:
            if file.seek(0, os.SEEK_END) == 0:
                return True
            file.seek(-1, os.SEEK_END)
            return file.read(1) == b"\n"
    except OSError:
        return True
