"""Where an export goes: only a previous zoo export is ever replaced.

`overwrite=True` (`zoo export --overwrite`) replaces a directory holding a
`zoo_export.json` (or an empty one). A folder of anything else, a regular
file or a symbolic link is refused, untouched, with one line saying what is
there. Temporaries that killed exports left beside the target are removed
first (see `zoo.core.atomic.remove_stale_temporaries` for the rule).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from zoo.core.atomic import atomic_directory, remove_stale_temporaries
from zoo.export.metadata import METADATA_FILE, read_metadata

__all__ = ["NotAnExportError", "check_export_target", "export_directory"]

_SHOWN = 3


class NotAnExportError(FileExistsError):
    """The export path holds something that is not a zoo export, so `overwrite` does not replace it."""


def check_export_target(path: str | os.PathLike, overwrite: bool) -> str:
    """Checks that an export may be written at `path`.

    Args:
        path: the export directory to create or replace.
        overwrite: whether a previous export there may be replaced.

    Returns:
        The absolute target path.

    Raises:
        FileExistsError: if `path` exists and overwrite is False.
        NotAnExportError: (a FileExistsError) if `path` is a file, a symbolic
            link, or a non-empty folder without a valid `zoo_export.json`.
    """
    target = os.path.abspath(os.fspath(path))
    if not os.path.lexists(target):
        return target
    if not overwrite:
        raise FileExistsError(f"{target!r} already exists; pass overwrite=True (--overwrite) to replace it.")
    advice = "remove it or choose another output path (--out)"
    if os.path.islink(target):
        raise NotAnExportError(f"{target!r} is a symbolic link, not a zoo export; {advice}.")
    if not os.path.isdir(target):
        raise NotAnExportError(f"{target!r} is a file, not a zoo export; {advice}.")
    entries = sorted(os.listdir(target))
    if not entries:
        return target  # an empty folder holds nothing to lose
    if METADATA_FILE not in entries:
        shown = [e + "/" if os.path.isdir(os.path.join(target, e)) else e for e in entries[:_SHOWN]]
        listing = ", ".join(shown) + (", ..." if len(entries) > _SHOWN else "")
        count = f"{len(entries)} item" + ("s" if len(entries) != 1 else "")
        raise NotAnExportError(
            f"{target!r} holds {count} ({listing}) and is not a zoo export (no {METADATA_FILE}); {advice}."
        )
    try:
        read_metadata(target)
    except (ValueError, OSError) as error:
        raise NotAnExportError(
            f"{target!r} has a {METADATA_FILE} that is not zoo export metadata ({error}); {advice}."
        ) from None
    return target


@contextlib.contextmanager
def export_directory(path: str | os.PathLike, overwrite: bool) -> Iterator[str]:
    """Yields a temporary directory that becomes the export at `path` (see `atomic_directory`).

    Checks the target before and again after the block (something may have
    appeared there meanwhile), and removes stale temporaries of killed exports.

    Raises:
        FileExistsError, NotAnExportError: as `check_export_target`.
    """
    target = check_export_target(path, overwrite)
    remove_stale_temporaries(target)
    with atomic_directory(target, overwrite=overwrite) as tmp:
        yield tmp
        check_export_target(target, overwrite)
