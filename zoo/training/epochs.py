"""The epochs of a run: steps in `tf.function` calls, checkpoints, validation, early stopping."""

from __future__ import annotations

import time

from zoo.training import checkpoints as ckpt_lib
from zoo.training.display import Display, write_summaries
from zoo.training.state import early_stopping
from zoo.training.steps import current_learning_rate, read_metrics

__all__ = ["run_epochs"]


def run_epochs(run, train_exec, val_exec, val_dist, manager, progress, writers, stop_check):
    """Trains from `progress` to the last epoch (or an early stop); returns this call's per-epoch metrics.

    Args:
        run: the `zoo.training.run._Run` (config, model, steps per epoch, cluster, timing, profiler).
        train_exec, val_exec: from `zoo.training.steps`; val_exec may be None.
        val_dist: the distributed validation dataset, or None.
        manager: the `tf.train.CheckpointManager`.
        progress: the checkpointed counters (`zoo.training.state.Progress`).
        writers: TensorBoard writers (empty off the chief).
        stop_check: `check(step, epoch)` from `zoo.training.state.stop_signals`.
    """
    config, model = run.config, run.model
    spe = run.steps_per_epoch
    step, epoch = int(progress.step), int(progress.epoch)
    history: list[dict[str, float]] = []
    display = Display(config.verbose and run.cluster.is_chief, spe, config.epochs)
    while epoch < config.epochs and not bool(progress.stopped):
        epoch_start = epoch * spe
        if step == epoch_start:
            model.reset_metrics()
        if run.fine_tune is not None and run.fine_tune.set_epoch(epoch):
            # Towers were unfrozen: a traced step keeps its old variable list.
            train_exec = run.make_train_exec(run.iterator)
        display.start_epoch(epoch, step - epoch_start)
        step = _epoch_steps(run, train_exec, manager, progress, display, stop_check, step, epoch)
        logs = read_metrics(model)
        if val_exec is not None:
            model.reset_metrics()
            val_exec(val_dist)
            logs.update({f"val_{k}": v for k, v in read_metrics(model).items()})
        logs["learning_rate"] = current_learning_rate(model)
        epoch += 1
        early_stopping(config, progress, logs)
        progress.set(step=step, epoch=epoch)
        ckpt_lib.save(manager, step)
        display.end_epoch(step - epoch_start, logs)
        write_summaries(writers, epoch, logs)
        history.append(logs)
    return history

def _epoch_steps(run, train_exec, manager, progress, display, stop_check, step, epoch) -> int:
    """Runs the rest of one epoch from `step`; returns the step reached (the epoch's end)."""
    config = run.config
    spe = run.steps_per_epoch
    epoch_start = epoch * spe
    read_every = max(20, config.steps_per_execution)
    # Throughput counts from the end of each epoch's first call, so
    # tracing and epoch-end work stay out of it; so do profiled calls,
    # which the profiler slows down.
    mark = None
    while step < epoch_start + spe:
        count = min(config.steps_per_execution, epoch_start + spe - step)
        profiled = run.profiler.begin(step, count)
        ids = train_exec(count)
        now = time.perf_counter()
        if mark is not None and not profiled:
            run.timed_seconds += now - mark
            run.timed_steps += count
            run.step_times.append((now - mark) / count)
        previous, step = step, step + count
        if run.profiler.end(step):
            now = time.perf_counter()  # writing the trace is no step's time
        mark = now
        if run.on_batch_ids is not None:
            run.on_batch_ids(step, ids.numpy())
        stop_check(step, epoch)
        end_of_epoch = step == epoch_start + spe
        if config.checkpoint_every and not end_of_epoch and step // config.checkpoint_every > previous // config.checkpoint_every:
            progress.set(step=step, epoch=epoch)
            ckpt_lib.save(manager, step)
        if config.verbose and not end_of_epoch and step // read_every > previous // read_every:
            # Every worker reads, so multi-worker metric reductions line up.
            display.update(step - epoch_start, read_metrics(run.model))
        else:
            display.update(step - epoch_start, None)
    return step
