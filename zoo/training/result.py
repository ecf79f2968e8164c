"""What `zoo.train` returns: the trained model, its metrics and how the call went."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["TrainResult"]


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained `keras.Model`.
        metrics: the last epoch's metrics (`loss`, `accuracy`, `val_loss`, ...).
        history: one dict of metrics per epoch trained by this call.
        step: global steps done in total (across restarts).
        epoch: epochs completed in total.
        stopped_early: whether early stopping ended the run.
        out: the run directory.
        examples_per_second: training throughput of this call (global
            examples per second, steady state: each epoch's first
            `tf.function` call and the epoch-end work are left out); None
            when too few calls ran to measure it.
        step_times: seconds per step of each timed call (end of the previous
            call to end of this one, divided by its steps), same selection.
        resumed_from_step: the step this call continued from, when it
            resumed from a checkpoint; None for a fresh start.
        already_complete: the run had finished before this call, which
            therefore changed nothing.
        notice: the one line saying so ("resuming from step N of M",
            "already complete (N steps); nothing to do"), or None; also
            logged on the `zoo.training` logger.
        profile_dir: the folder of the trace `profile=(start, stop)` wrote
            (under `out/logs/train/plugins/profile/`), or None when this
            call traced nothing (no profile asked, or the range was passed).
    """

    model: Any
    metrics: dict[str, float]
    history: list[dict[str, float]]
    step: int
    epoch: int
    stopped_early: bool
    out: str
    examples_per_second: float | None = None
    step_times: list[float] = dataclasses.field(default_factory=list)
    resumed_from_step: int | None = None
    already_complete: bool = False
    notice: str | None = None
    profile_dir: str | None = None
