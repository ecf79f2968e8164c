"""A profile of a range of training steps, written by TensorFlow's profiler into the run's TensorBoard logs.

`zoo.train(..., profile=(START, STOP))` (`zoo train --profile START:STOP`)
traces the steps that take the run from global step START to global step STOP
(STOP - START steps; `(0, n)` includes the first step's tracing and
compilation, so a later range shows the steady state). The trace goes where
Keras' TensorBoard callback puts its own, under the training writer's folder:
`OUT/logs/train/plugins/profile/<timestamp>/<host>.xplane.pb`, which
`tensorboard --logdir OUT/logs` shows in its Profile tab (that tab comes with
the `tensorboard-plugin-profile` package).

The profiler starts and stops between `tf.function` calls, so with
`steps_per_execution` > 1 the trace covers every call that runs a step of the
range. A resumed run traces what is left of the range and skips a range it
has already passed. Only the chief profiles. Tracing changes no weight and no
metric, but traced calls run slower, so they are left out of the run's
throughput figures.
"""

from __future__ import annotations

import logging
import os

__all__ = ["check_profile", "StepProfiler", "profile_logdir"]

log = logging.getLogger("zoo.training")


def check_profile(profile, total_steps: int | None = None) -> tuple[int, int] | None:
    """Checks a profile range of global steps; this module imports no TensorFlow for it.

    Args:
        profile: `(start, stop)`, two integers with 0 <= start < stop, or None.
        total_steps: the run's planned steps (epochs x steps per epoch), when
            known; stop may not exceed it.

    Returns:
        The range as a tuple of two ints, or None.

    Raises:
        ValueError: naming the range and what was expected.
    """
    if profile is None:
        return None
    if (
        isinstance(profile, str | bytes)
        or not isinstance(profile, list | tuple)
        or len(profile) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in profile)
    ):
        raise ValueError(f"profile={profile!r}: expected (start, stop), two integers of global steps, or None.")
    start, stop = profile
    if start < 0:
        raise ValueError(f"profile={profile!r}: start {start} is negative; expected 0 <= start < stop.")
    if stop <= start:
        raise ValueError(
            f"profile={profile!r}: stop {stop} must be greater than start {start} "
            "(the trace covers the steps from global step start to global step stop)."
        )
    if total_steps is not None and stop > total_steps:
        raise ValueError(
            f"profile={profile!r}: stop {stop} is beyond the run's {total_steps} steps; expected stop <= {total_steps}."
        )
    return int(start), int(stop)


def profile_logdir(out: str) -> str:
    """The folder the profiler writes under (`OUT/logs/train`, like Keras' TensorBoard callback)."""
    return os.path.join(out, "logs", "train")


class StepProfiler:
    """Starts TensorFlow's profiler before the first call of a step range and stops it after the last.

    Args:
        profile: `(start, stop)` from `check_profile`, or None (does nothing).
        logdir: the TensorBoard folder the trace goes under (`profile_logdir`).
        enabled: False off the chief.

    Attributes:
        trace_dir: the folder holding the written trace (`.../plugins/profile/<timestamp>`),
            or None while none was written.
    """

    def __init__(self, profile: tuple[int, int] | None, logdir: str, *, enabled: bool = True):
        self.range = profile if enabled else None
        self.logdir = logdir
        self.active = False
        self.trace_dir: str | None = None
        self._before: set[str] = set()

    def begin(self, step: int, count: int) -> bool:
        """Called before a `tf.function` call running steps step+1 .. step+count; returns whether it is traced."""
        if self.range is None or self.trace_dir is not None:
            return self.active
        start, stop = self.range
        if not self.active and step < stop and step + count > start:
            import tensorflow as tf

            self._before = set(self._sessions())
            try:
                tf.profiler.experimental.start(self.logdir)
            except tf.errors.AlreadyExistsError:
                # Another profiler (the user's own) is running: training matters more than this trace.
                log.warning("Not profiling steps %d to %d: another TensorFlow profiler is running.", start, stop)
                self.range = None
                return False
            self.active = True
        return self.active

    def end(self, step: int) -> bool:
        """Called after a call that reached global step `step`; returns whether it stopped the profiler."""
        if self.active and step >= self.range[1]:
            self.close()
            return True
        return False

    def close(self) -> None:
        """Stops the profiler and writes the trace, if it is running (also on an interrupted run)."""
        if not self.active:
            return
        import tensorflow as tf

        self.active = False
        tf.profiler.experimental.stop()
        sessions = self._sessions()
        # Two traces within one second share their folder; then it is the newest one.
        written = sorted(set(sessions) - self._before) or sorted(sessions)
        self.trace_dir = os.path.join(self._root(), written[-1]) if written else None
        log.debug("Wrote a profile of steps %d to %d in %s", *self.range, self.trace_dir)

    def _root(self) -> str:
        return os.path.join(self.logdir, "plugins", "profile")

    def _sessions(self) -> list[str]:
        root = self._root()
        return os.listdir(root) if os.path.isdir(root) else []
