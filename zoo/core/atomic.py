"""Atomic writes: build beside the target, then rename into place.

A half-written export or model file must never replace a good one. Everything
is written into a temporary path in the target's own directory (same file
system, so the final rename is atomic) and only renamed over the target once
it is complete. On any error the temporary path is removed and the previous
target is left exactly as it was.

Example:

>>> with atomic_directory("exports/v1", overwrite=True) as tmp:
...     write_everything_into(tmp)
>>> atomic_save_model(model, "runs/a/model.keras", overwrite=True)

Temporary names say who made them: `.NAME.tmp-<pid>-<host>-<random>` (files
keep NAME's extension after the random part; a directory moved aside during a
replace is `.NAME.old-<pid>-<host>-<random>`), where <host> is a short hash of
the machine's name. A writer killed with SIGKILL cannot remove its temporary;
`remove_stale_temporaries(path)` removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_save_model",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale_temporaries",
    "LEGACY_STALE_SECONDS",
]

# Temporaries named before names carried a PID cannot be tied to a process;
# they count as stale once nothing in them has changed for this long.
LEGACY_STALE_SECONDS = 3600


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[str]:
    """Yields an empty temporary directory that becomes `path` on success.

    The temporary directory is created beside `path`. When the `with` block
    ends without an error it replaces `path` (on Linux by an atomic exchange,
    elsewhere by two renames); when the block raises, it is deleted and `path`
    is untouched.

    Args:
        path: the directory to create or replace.
        overwrite: replace `path` if it already exists.

    Yields:
        The temporary directory to write into.

    Raises:
        FileExistsError: if `path` exists and `overwrite` is False (checked
            before and again after the block, in case it appeared meanwhile).
        NotADirectoryError: if `path` exists and is not a directory.
    """
    target = os.path.abspath(os.fspath(path))
    _check_target(target, overwrite, want_dir=True)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=_prefix(target, "tmp"), dir=parent)
    default_permissions(tmp, directory=True)
    try:
        yield tmp
        _fsync_tree(tmp)
        _check_target(target, overwrite, want_dir=True)
        _replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[str]:
    """Yields a temporary file path beside `path` that replaces `path` when the block succeeds.

    The temporary name keeps the target's extension, because writers such as
    Keras and matplotlib choose the format from it. The file is flushed to disk
    and given the usual permissions before the rename; on an error it is
    removed and `path` is left as it was.

    Args:
        path: the target file.
        overwrite: replace an existing file.

    Yields:
        The temporary path to write.

    Raises:
        FileExistsError: if `path` exists and `overwrite` is False.
    """
    target = os.path.abspath(os.fspath(path))
    _check_target(target, overwrite, want_dir=False)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    suffix = os.path.splitext(target)[1]
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target, "tmp"), suffix=suffix, dir=parent)
    os.close(fd)
    try:
        default_permissions(tmp)
        yield tmp
        _fsync_file(tmp)
        # The target may have appeared while the file was written.
        _check_target(target, overwrite, want_dir=False)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(parent)


def atomic_save_model(model, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Saves a Keras model to a `.keras` file atomically.

    Args:
        model: a `keras.Model`.
        path: the target file; must end with `.keras`.
        overwrite: replace an existing file.

    Raises:
        ValueError: if `path` does not end with `.keras`.
        FileExistsError: if `path` exists and `overwrite` is False.
    """
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(f"Model path {os.fspath(path)!r} must end with '.keras'.")
    with atomic_path(path, overwrite=overwrite) as tmp:
        model.save(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> None:
    """Writes `data` to `path` through a temporary file beside it.

    Raises:
        FileExistsError: if `path` exists and `overwrite` is False.
    """
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> None:
    """Writes UTF-8 `text` to `path` atomically (see `atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def default_permissions(path: str, directory: bool = False) -> None:
    """Gives a temporary file or directory the mode `open()` or `os.mkdir` would.

    mkstemp makes files 0600 and mkdtemp directories 0700; exports and run
    outputs are shared, so they get what the umask allows.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Removes the temporaries of `path` that killed writers left beside it.

    A temporary is removed only when it is certainly abandoned:
    - it was made on this machine by a process that no longer exists (its
      name records the PID and a hash of the host name; a PID that is alive,
      even if reused by an unrelated process, keeps it), or
    - it has the older name without a PID and nothing in it changed for
      `LEGACY_STALE_SECONDS`.
    Temporaries of this process and of other machines (shared file systems)
    are never touched, so a concurrent writer's work is safe.

    Args:
        path: the target file or directory whose siblings to clean.

    Returns:
        The paths removed.
    """
    target = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(target)
    try:
        entries = os.listdir(parent)
    except (FileNotFoundError, NotADirectoryError):
        return []
    pattern = re.compile(
        rf"\.{re.escape(name)}\.(?:tmp|old)-(?:(?P<pid>\d+)-(?P<host>[0-9a-f]{{8}})-)?[a-z0-9_]{{6,}}(?:\.[^/]*)?"
    )
    removed = []
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match is None:
            continue
        candidate = os.path.join(parent, entry)
        if match["pid"] is not None:
            if match["host"] != _host_tag() or int(match["pid"]) == os.getpid() or _process_alive(int(match["pid"])):
                continue
        elif time.time() - _newest_mtime(candidate) < LEGACY_STALE_SECONDS:
            continue
        if os.path.isdir(candidate) and not os.path.islink(candidate):
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(candidate)
        if not os.path.lexists(candidate):
            removed.append(candidate)
    return removed


# --- internals -------------------------------------------------------------


def _prefix(target: str, kind: str) -> str:
    return f".{os.path.basename(target)}.{kind}-{os.getpid()}-{_host_tag()}-"


def _host_tag() -> str:
    # A hash, not the name: host names can hold characters unfit for file names.
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill would terminate the process on Windows: keep the temporary
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return True  # unknown: keep the temporary
    return True


def _newest_mtime(path: str) -> float:
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for directory, dirs, files in os.walk(path):
            for item in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(directory, item)).st_mtime)
    return newest


def _check_target(target: str, overwrite: bool, want_dir: bool) -> None:
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise FileExistsError(f"{target!r} already exists; pass overwrite=True (--overwrite) to replace it.")
    if want_dir and not os.path.isdir(target):
        raise NotADirectoryError(f"{target!r} exists and is not a directory; refusing to replace it.")
    if not want_dir and os.path.isdir(target):
        raise IsADirectoryError(f"{target!r} is a directory; refusing to replace it with a file.")


def _replace_directory(tmp: str, target: str) -> None:
    if not os.path.lexists(target):
        try:
            os.rename(tmp, target)
            return
        except OSError as error:
            # Something appeared at `target` after the last check; fall through to replace it.
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if _exchange(tmp, target):
        # `tmp` now holds the previous export.
        shutil.rmtree(tmp, ignore_errors=True)
        return
    # No atomic exchange here: move the old one aside first, and put it back
    # if the second rename fails, so some complete version is always in place.
    backup = tempfile.mkdtemp(prefix=_prefix(target, "old"), dir=os.path.dirname(target))
    os.rmdir(backup)
    os.rename(target, backup)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swaps two paths atomically with Linux renameat2(RENAME_EXCHANGE); False if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, f"could not swap {a!r} and {b!r}: {os.strerror(code)}")


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    # Makes the rename itself durable; not every platform allows it.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: str) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            _fsync_file(os.path.join(directory, name))
        _fsync_dir(directory)
