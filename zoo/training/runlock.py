"""One writer per run folder: an advisory lock on `RUN/.lock`.

A training run holds an exclusive `fcntl.flock` on `RUN/.lock` from before
its first write until it returns; the lock file then records the holder's
PID and host. Readers that must not see a half-finished run (export) hold a
shared lock while they read. The operating system releases a lock when its
process dies, so a killed run never leaves the folder locked; the file
itself stays (it is empty of meaning without the lock).

>>> with shared_lock("runs/a"):
...     export_from("runs/a")
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator

__all__ = ["LOCK_NAME", "RunLocked", "exclusive_lock", "shared_lock", "write_holder"]

LOCK_NAME = ".lock"


class RunLocked(RuntimeError):
    """Another process holds the run folder's lock; the message is one line naming it."""

    def __init__(self, run_dir: str, holder: str, wanted: str):
        super().__init__(
            f"{run_dir} is in use by another process ({holder}); cannot {wanted} it until that process ends."
        )
        self.run_dir = run_dir
        self.holder = holder


@contextlib.contextmanager
def exclusive_lock(run_dir: str | os.PathLike) -> Iterator[int]:
    """Holds the exclusive (writer's) lock of a run folder, refusing at once if it is taken.

    The lock file is opened without truncation, so taking the lock changes no
    file; call `write_holder` once the run is going to write.

    Args:
        run_dir: an existing run folder.

    Yields:
        The lock file's descriptor (for `write_holder`).

    Raises:
        RunLocked: another process holds the lock (shared or exclusive).
    """
    with _locked(run_dir, fcntl.LOCK_EX, "train into") as fd:
        yield fd


@contextlib.contextmanager
def shared_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Holds a shared (reader's) lock of a run folder while the block reads it.

    Several readers may hold it together; a running training refuses it.

    Args:
        run_dir: a run folder. A folder without a lock file (a run from
            before locks) is locked by creating the file only when the folder
            is writable; a read-only folder is read without a lock.

    Raises:
        RunLocked: a training holds the folder (it is being written).
    """
    try:
        context = _locked(run_dir, fcntl.LOCK_SH, "read")
        context.__enter__()
    except OSError as error:
        if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        # No lock file and no right to create one: nobody can be writing here either.
        yield
        return
    try:
        yield
    finally:
        context.__exit__(None, None, None)


def write_holder(fd: int) -> None:
    """Records this process's PID and host in a held lock file (shown to the next process refused)."""
    text = f"pid {os.getpid()} on host {socket.gethostname()}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, text, 0)


@contextlib.contextmanager
def _locked(run_dir, mode: int, wanted: str) -> Iterator[int]:
    run_dir = os.path.abspath(os.fspath(run_dir))
    path = os.path.join(run_dir, LOCK_NAME)
    if mode == fcntl.LOCK_SH and os.path.exists(path):
        # A reader needs no write access (flock works on read-only descriptors).
        fd = os.open(path, os.O_RDONLY)
    else:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(run_dir, _holder(fd), wanted) from None
        yield fd
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def _holder(fd: int) -> str:
    text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    return text or "holder unknown: a reader, or a run that has not yet written its PID"
