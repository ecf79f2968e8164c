"""Run state: the checkpointed counters, which checkpoint to resume, early stopping, stop signals."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
from typing import Any

import tensorflow as tf

from zoo.core.jsonio import to_json
from zoo.training import checkpoints as ckpt_lib
from zoo.training import runfiles
from zoo.training.inputs import agree_on_min

__all__ = ["Preempted", "Interrupted", "Progress", "Variables", "choose_checkpoint", "resume_differences", "check_resume",
           "finished_marker", "early_stopping",
           "stop_signals"]

log = logging.getLogger(__name__)

# Settings a resumed run must share with the run that wrote the checkpoints.
RESUME_KEYS = ("model", "hyperparameters", "data", "batch_size", "global_batch_size", "steps_per_epoch", "seed")


class Preempted(Exception):
    """Raised by `train` after a termination signal made it save a checkpoint and stop.

    Running the same training again continues from `step`.
    """

    def __init__(self, step: int, checkpoint: str | None):
        super().__init__(f"Training was stopped by a termination signal at step {step}; the state is saved in {checkpoint}. Run the same command again to continue.")
        self.step = step
        self.checkpoint = checkpoint


class Progress(tf.Module):
    """Counters and early-stopping state saved in every checkpoint."""

    def __init__(self):
        super().__init__(name="progress")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.best = tf.Variable(float("nan"), dtype=tf.float64, trainable=False, name="best")
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="wait")
        self.stopped = tf.Variable(False, trainable=False, name="stopped")

    def set(self, *, step: int, epoch: int):
        self.step.assign(step)
        self.epoch.assign(epoch)


class Variables(tf.Module):
    """A fixed list of Keras variables as one checkpointable object.

    `tf.train.Checkpoint` does not see inside a Keras 3 model, so the model's
    variables (weights, non-trainable statistics, random-seed states) and
    metric variables are listed explicitly, in the model's stable order.
    """

    def __init__(self, name: str, variables):
        super().__init__(name=name)
        self.variables_list = [v.value if hasattr(v, "value") else v for v in variables]


def choose_checkpoint(run) -> str | None:
    """The checkpoint this worker restores: its newest intact one, or the newest step every worker has."""
    path = ckpt_lib.find_restorable(run.checkpoint_dir)
    if run.cluster.num_workers == 1:
        return path
    # A kill can land between two workers' saves; all restore the newest step they all have.
    step = ckpt_lib.checkpoint_step(path) if path else -1
    agreed = agree_on_min(run, step)
    if agreed < 0:
        return None
    if agreed != step:
        candidate = os.path.join(run.checkpoint_dir, f"{ckpt_lib.CHECKPOINT_NAME}-{agreed}")
        if tf.io.gfile.exists(candidate + ".index"):
            log.warning("Worker %d restores step %d, the newest step every worker saved.", run.cluster.worker_index, agreed)
            return candidate
        raise ValueError(
            f"Worker {run.cluster.worker_index} has no checkpoint of step {agreed}, the newest step every "
            f"worker saved (its newest is {step}); the checkpoints in {run.out} cannot be resumed together."
        )
    return path


def resume_differences(previous: dict[str, Any], run_config: dict[str, Any]) -> list[str]:
    """The settings that differ between a run folder's config and this run's, as `key: old -> new`.

    Hyperparameters are compared one by one, so only the changed ones are named.
    """
    current = to_json(run_config)
    changes = []
    for key in RESUME_KEYS:
        if key not in previous or previous.get(key) == current.get(key):
            continue
        old, new = previous.get(key), current.get(key)
        if key == "hyperparameters" and isinstance(old, dict) and isinstance(new, dict):
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    changes.append(f"{name}: {old.get(name)!r} -> {new.get(name)!r}")
        else:
            changes.append(f"{key}: {old!r} -> {new!r}")
    return changes


def check_resume(out: str, restore_path: str | None, run_config: dict[str, Any]) -> dict[str, Any] | None:
    """Refuses to resume checkpoints written with other settings.

    Returns:
        The folder's previous `config.json` (None without checkpoints or config).

    Raises:
        ValueError: listing only the settings that differ (`key: old -> new`).
    """
    if restore_path is None:
        return None
    previous = runfiles.read_config(out)
    if previous is None:
        return None
    changes = resume_differences(previous, run_config)
    if changes:
        raise ValueError(
            f"{out} holds checkpoints of a run with other settings ({'; '.join(changes)}). Resume with "
            "the same settings, or use a new --out directory."
        )
    return previous


def finished_marker(out: str, restore_path, previous, total_steps: int, epochs: int) -> dict[str, Any] | None:
    """The completion marker when this exact run already finished in OUT, else None.

    Finished means: the same settings (checked by `check_resume`) and epochs,
    a marker that `verify_run` accepts, at the last step (or an early stop),
    and the newest checkpoint at the marker's step.
    """
    if restore_path is None or previous is None:
        return None
    try:
        marker = runfiles.verify_run(out)
    except (ValueError, OSError) as error:
        log.info("%s is not complete (%s); training resumes.", out, error)
        return None
    reached = marker.get("step") == total_steps or bool(marker.get("stopped_early"))
    at_marker = ckpt_lib.checkpoint_step(restore_path) == marker.get("step")
    return marker if reached and at_marker and previous.get("epochs") == epochs else None


def early_stopping(config, progress: Progress, logs: dict[str, float]) -> None:
    """Updates the best value and patience counter; sets `progress.stopped` when patience runs out."""
    if config.early_stopping_patience is None:
        return
    value = logs.get(config.monitor)
    if value is None:
        raise ValueError(f"Early stopping monitors {config.monitor!r}, which is not among the metrics {sorted(logs)}.")
    best = float(progress.best)
    if config.minimize_monitor():
        improved = math.isnan(best) or value < best - config.min_delta
    else:
        improved = math.isnan(best) or value > best + config.min_delta
    if improved:
        progress.best.assign(value)
        progress.wait.assign(0)
    else:
        progress.wait.assign_add(1)
        if int(progress.wait) >= config.early_stopping_patience:
            progress.stopped.assign(True)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, raised after the state was saved; running the same training again continues."""

    def __init__(self, step: int, checkpoint: str | None):
        super().__init__(f"interrupted at step {step}; the state is saved in {checkpoint}; "
                         "run the same command again to continue")
        self.step = step
        self.checkpoint = checkpoint


@contextlib.contextmanager
def stop_signals(run, manager, progress: Progress):
    """Yields `check(step, epoch)`, called between `tf.function` calls.

    After SIGTERM it saves a checkpoint and raises `Preempted`; after SIGINT
    (Ctrl-C) it saves and raises `KeyboardInterrupt`. Both are noticed
    between calls, where the state is consistent; a second Ctrl-C
    interrupts at once. Multi-worker runs leave SIGTERM to TensorFlow's
    `PreemptionCheckpointHandler` (all workers must save together) and
    SIGINT to Python.
    """
    if run.kind == "multi_worker" and run.cluster.num_workers > 1:
        with _multi_worker_preemption(run, manager, progress) as check:
            yield check
        return
    received = {"term": threading.Event(), "int": threading.Event()}
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}

    def on_interrupt(signum, frame):
        if received["int"].is_set():
            raise KeyboardInterrupt
        received["int"].set()

    if in_main:
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, lambda signum, frame: received["term"].set())
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, on_interrupt)

    def check(step, epoch):
        if received["term"].is_set() or received["int"].is_set():
            progress.set(step=step, epoch=epoch)
            path = ckpt_lib.save(manager, step)
            if received["term"].is_set():
                raise Preempted(step, path)
            raise Interrupted(step, path)

    try:
        yield check
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _multi_worker_preemption(run, manager, progress):
    holder = {}

    def exit_fn():
        raise Preempted(holder["step"], manager.latest_checkpoint)

    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    handler = tf.distribute.experimental.PreemptionCheckpointHandler(
        run.strategy.cluster_resolver,
        manager,
        termination_config=tf.distribute.experimental.TerminationConfig(exit_fn=exit_fn),
    )

    def check(step, epoch):
        # The handler may save during this call, so the counters must be current.
        holder["step"] = step
        progress.set(step=step, epoch=epoch)
        handler.save_checkpoint_if_preempted(checkpoint_number=step)

    try:
        yield check
    finally:
        # Dropping the handler stops its watcher threads (in its __del__).
        handler = None  # noqa: F841
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
