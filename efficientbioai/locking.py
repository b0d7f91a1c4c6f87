"""One writer per folder: an exclusive lock while compress writes an experiment or stream/infer
write outputs.

The lock is ``fcntl.flock`` on ``.<folder>.lock`` beside the folder, holding the pid, host,
command and start time of its holder. The kernel releases it when the holder exits, however it
exits (Ctrl-C, kill -9, a crash), so a stale lock file never blocks anyone: only a live holder
does. A second run gets an :class:`~efficientbioai.errors.InputError` naming the holder.
The holder removes the lock file before it lets go; a run that locked a file which was removed
meanwhile (its inode no longer the one at the path) tries again, so two runs never hold locks
on two different files.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from efficientbioai.errors import InputError


def lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


@contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (which need not exist yet) inside the block."""
    folder = Path(folder).absolute()
    path = lock_path(folder)
    fd = _acquire(folder, path, what)
    try:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv[:6]),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        with suppress(OSError):
            path.unlink(missing_ok=True)  # while still locked: a waiting run then retries on a new file
        os.close(fd)  # releases the lock


def _acquire(folder: Path, path: Path, what: str) -> int:
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileExistsError, NotADirectoryError):
            raise InputError(f"{folder}: a part of this path is a file, not a folder; choose another path") from None
        except OSError as exc:
            raise InputError(
                f"cannot lock {folder} for writing ({exc.strerror}: {path}); choose another folder"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise InputError(
                f"{folder} is being written by another run ({holder}); wait for it to finish "
                f"or choose another folder for {what}"
            ) from None
        with suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        os.close(fd)  # the holder removed this file as we locked it: lock the new one


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"
