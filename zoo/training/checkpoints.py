"""Checkpoints that survive a kill.

A training checkpoint holds the model, the optimizer, the step and epoch
counters and the tf.data iterator, so a restarted run continues at the exact
batch where the saved one stopped. `find_restorable` reads every tensor of a
candidate before trusting it: a checkpoint cut short by a kill or damaged on
disk is skipped with a warning, and the previous one is used.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
import shutil
import time
import warnings

import tensorflow as tf

__all__ = [
    "CHECKPOINT_NAME",
    "find_restorable",
    "checkpoint_step",
    "make_manager",
    "remove_leftovers",
    "save",
]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "ckpt"
_STEP_RE = re.compile(rf"{CHECKPOINT_NAME}-(\d+)$")


def checkpoint_step(path: str) -> int:
    """Returns the step number in a checkpoint prefix such as `.../ckpt-120`.

    Raises:
        ValueError: if the name does not end in `ckpt-<step>`.
    """
    match = _STEP_RE.search(os.path.basename(path))
    if not match:
        raise ValueError(f"Checkpoint path {path!r} does not end in '{CHECKPOINT_NAME}-<step>'.")
    return int(match.group(1))


def find_restorable(directory: str) -> str | None:
    """Returns the newest checkpoint in `directory` that reads back intact.

    Candidates are the checkpoints the directory's state file lists, newest
    first. Each is read in full (TensorFlow checks every tensor's CRC on
    read); one that fails is reported with a `UserWarning`, moved into
    `directory/corrupt/`, and the next older one is tried. When a checkpoint
    was skipped, the state file is rewritten so that it lists only the intact
    ones.

    Args:
        directory: a checkpoint directory; it need not exist.

    Returns:
        The checkpoint prefix to restore, or None when there is none.
    """
    if not tf.io.gfile.isdir(directory):
        return None
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    candidates = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    candidates = [p if os.path.isabs(p) else os.path.join(directory, p) for p in candidates]
    if state.model_checkpoint_path:
        latest = state.model_checkpoint_path
        latest = latest if os.path.isabs(latest) else os.path.join(directory, latest)
        if latest not in candidates:
            candidates.append(latest)
    intact = []
    chosen = None
    skipped = False
    for path in reversed(candidates):
        if chosen is None:
            problem = _read_problem(path)
            if problem is None:
                chosen = path
                intact.append(path)
            else:
                skipped = True
                warnings.warn(
                    f"Checkpoint {path} cannot be restored ({problem}); falling back to the "
                    "previous checkpoint. Its files are moved to "
                    f"{os.path.join(directory, 'corrupt')}.",
                    UserWarning,
                    stacklevel=2,
                )
                _move_aside(path, directory)
        else:
            intact.append(path)
    if skipped:
        intact.reverse()
        _rewrite_state(directory, intact)
    return chosen


def make_manager(checkpoint: tf.train.Checkpoint, directory: str, keep: int) -> tf.train.CheckpointManager:
    """Returns a `CheckpointManager` that names checkpoints `ckpt-<step>` and keeps `keep`."""
    return tf.train.CheckpointManager(
        checkpoint, directory, max_to_keep=keep, checkpoint_name=CHECKPOINT_NAME
    )


# TensorFlow reports file-system failures as OpErrors; these say which OSError they were.
_OS_ERRORS = {"No space left": errno.ENOSPC, "Read-only file system": errno.EROFS, "Permission denied": errno.EACCES}


def save(manager: tf.train.CheckpointManager, step: int) -> str:
    """Saves checkpoint `ckpt-<step>` through `manager`.

    Returns:
        The checkpoint prefix written.

    Raises:
        OSError: no space, read-only file system or permission denied, with
            `filename` the checkpoint directory (TensorFlow's own error is the
            cause). The state file still names the previous checkpoint, and
            the next start removes the half-written `ckpt-<step>_temp/`.
    """
    try:
        return manager.save(checkpoint_number=step)
    except tf.errors.OpError as error:
        for text, code in _OS_ERRORS.items():
            if text in str(error):
                raise OSError(code, f"{os.strerror(code)} while saving checkpoint {step}", manager.directory) from error
        raise


def remove_leftovers(directory: str) -> None:
    """Removes what interrupted saves left in a checkpoint directory, and registers strays.

    A save killed midway leaves a `ckpt-N_temp/` directory (TensorFlow's
    staging area) that nothing else removes; it is deleted. A save killed
    after its files were complete but before the state file was updated, or
    a checkpoint dropped from the state file, leaves `ckpt-N.*` files the
    manager no longer sees and therefore never prunes; they are listed in the
    state file again (in step order), so `keep_checkpoints` counts them and
    `find_restorable` checks them like the others.

    Args:
        directory: a checkpoint directory; it need not exist.
    """
    if not os.path.isdir(directory):
        return
    for path in glob.glob(os.path.join(glob.escape(directory), f"{CHECKPOINT_NAME}-*_temp*")):
        log.info("Removing %s, left by an interrupted save.", path)
        _remove_quietly(path)
    on_disk = {}
    for index in glob.glob(os.path.join(glob.escape(directory), f"{CHECKPOINT_NAME}-*.index")):
        prefix = index[: -len(".index")]
        if _STEP_RE.search(os.path.basename(prefix)):
            on_disk[prefix] = checkpoint_step(prefix)
    state = tf.train.get_checkpoint_state(directory)
    listed = []
    if state is not None:
        listed = [p if os.path.isabs(p) else os.path.join(directory, p) for p in state.all_model_checkpoint_paths]
    strays = set(on_disk) - set(listed)
    if strays:
        kept = [p for p in listed if p in on_disk]
        paths = sorted(set(kept) | strays, key=lambda p: on_disk[p])
        log.info("Registering %d checkpoint(s) missing from the state file: %s", len(strays), sorted(strays))
        _rewrite_state(directory, paths)


# --- internals -------------------------------------------------------------


def _read_problem(path: str) -> str | None:
    """Returns why the checkpoint at `path` cannot be read, or None if it reads intact."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            try:
                reader.get_tensor(name)
            except tf.errors.InternalError as error:
                # A variant (the tf.data iterator state) is read and parsed
                # before the reader fails to turn it into NumPy; only that
                # last step's failure is expected.
                if dtype != tf.variant or "not convertible to numpy" not in str(error):
                    raise
    except (tf.errors.OpError, ValueError, OSError) as error:
        message = str(error).strip().splitlines()
        return f"{type(error).__name__}: {message[0] if message else ''}"
    return None


def _move_aside(path: str, directory: str) -> None:
    target = os.path.join(directory, "corrupt")
    os.makedirs(target, exist_ok=True)
    for name in glob.glob(glob.escape(path) + ".*"):
        destination = os.path.join(target, os.path.basename(name))
        try:
            os.replace(name, destination)
        except OSError as error:
            log.warning("Could not move %s aside: %s", name, error)


def _rewrite_state(directory: str, paths: list[str]) -> None:
    state_file = os.path.join(directory, "checkpoint")
    if not paths:
        _remove_quietly(state_file)
        return
    # CheckpointManager treats a checkpoint whose timestamp is not newer than
    # last_preserved_timestamp as kept forever; without timestamps every
    # listed checkpoint would be, and max_to_keep would never prune them.
    timestamps = []
    for path in paths:
        try:
            stamp = os.path.getmtime(path + ".index")
        except OSError:
            stamp = time.time()
        timestamps.append(max(stamp, timestamps[-1] if timestamps else 0.0))
    # update_checkpoint_state writes the state file atomically.
    tf.compat.v1.train.update_checkpoint_state(
        directory, paths[-1], all_model_checkpoint_paths=paths,
        all_model_checkpoint_timestamps=timestamps, last_preserved_timestamp=0.0,
    )


def _remove_quietly(path: str) -> None:
    try:
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass
