"""The training entry point: one loop for every `tf.distribute` strategy, with exact resume.

Keras 3's `fit` cannot serve here: it fails under `MultiWorkerMirroredStrategy`
and its `BackupAndRestore` replays an interrupted epoch from its first batch.
This loop keeps the model's own `train_step` (so losses, metrics and mixed
precision behave as in `fit`) and owns everything around it:

* each worker reads its shard through one plain `tf.data` iterator over the
  repeated dataset and hands each local replica its batch with
  `experimental_distribute_values_from_function` (the iterators of
  `distribute_datasets_from_function` cannot be checkpointed), so the
  iterator, and with it the position inside the epoch and the shuffle state,
  goes into every checkpoint (`zoo.training.steps`, `zoo.training.inputs`);
* several steps run per `tf.function` call (`steps_per_execution`), each
  through `strategy.run`;
* checkpoints hold model, optimizer, metrics, step and epoch counters,
  early-stopping state and the iterator; a restart continues at the saved
  step, and a SIGTERM (to any worker, for multi-worker runs) or a Ctrl-C
  saves and stops (`zoo.training.state`);
* the run folder has one writer at a time (`zoo.training.runlock`), is
  validated before it is created, and is written in an order that never
  disagrees with itself (`zoo.training.runfiles`); a finished run asked
  again does nothing.

>>> import zoo
>>> result = zoo.train("cnn_lstm_concat_seed", data="vqa", out="runs/vqa", epochs=2)
>>> result.metrics["val_accuracy"]
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.core import keys
from zoo.core.atomic import atomic_save_model
from zoo.core.version import __version__
from zoo.training import checkpoints as ckpt_lib
from zoo.training import runfiles, runlock
from zoo.training.config import TrainConfig
from zoo.training.display import summary_writers
from zoo.training.epochs import run_epochs
from zoo.training.gradient_registry import StepGraphs
from zoo.training.inputs import check_data_request, data_config, train_dataset, validation_dataset
from zoo.training.profiling import StepProfiler, check_profile, profile_logdir
from zoo.training.result import TrainResult
from zoo.training.state import (
    Preempted,
    Progress,
    Variables,
    check_resume,
    choose_checkpoint,
    finished_marker,
    stop_signals,
)
from zoo.training.steps import (
    build_model,
    make_train_function,
    make_validation_function,
    seed_everything,
)
from zoo.training.strategy import cluster_info, resolve_strategy, strategy_kind
from zoo.training.textpreset import text_preset_source
from zoo.training.threads import apply_thread_settings

__all__ = ["train", "TrainResult", "Preempted", "EXAMPLE_ID", "PREEMPTED_EXIT_CODE"]

log = logging.getLogger("zoo.training")

# Optional int64 feature tagging each example; dropped before the model sees it.
EXAMPLE_ID = keys.EXAMPLE_ID
# Exit status of a preempted run that saved its state; a scheduler restarts it.
PREEMPTED_EXIT_CODE = 42
# Keys of metrics.json that are not metrics.
_BOOKKEEPING = ("step", "epoch", "stopped_early", "examples_per_second", "artifacts")


DatasetFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]


def train(
    model,
    *,
    out: str | os.PathLike,
    data: str | None = None,
    dataset_fn: DatasetFn | tf.data.Dataset | None = None,
    validation_fn: DatasetFn | tf.data.Dataset | None = None,
    data_dir: str | os.PathLike | None = None,
    source_dir: str | os.PathLike | None = None,
    train_split: str = "train",
    validation_split: str | None = "validation",
    max_length: int = 32,
    model_overrides: Mapping[str, Any] | None = None,
    vocabulary: list[str] | None = None,
    on_batch_ids: Callable[[int, np.ndarray], None] | None = None,
    extra_config: Mapping[str, Any] | None = None,
    **options,
) -> TrainResult:
    """Trains a model under a `tf.distribute` strategy, resuming from OUT's checkpoints.

    Everything that can be checked without data (options, model name and
    overrides, data config and splits, OUT itself) is checked before OUT is
    created. A run whose OUT already holds the finished run of the same
    settings returns at once and changes nothing.

    Args:
        model: a registered model name (built with `model_overrides`), a
            function returning a new uncompiled `keras.Model`, or a
            `keras.Model` (default strategy only: a model for another
            strategy must be built inside its scope, so pass a function).
            Each output is compiled with the loss its head needs (see
            `zoo.training.steps`).
        out: the run directory: new, empty, or a previous run of the zoo. It
            receives `vocabulary.txt` (when a vocabulary is known),
            `model.keras`, `config.json`, `metrics.json` (written last, the
            completion marker), `checkpoints/`, `logs/` (TensorBoard, and the
            trace of `profile=(start, stop)`) and `.lock` (see
            `zoo.training.runfiles`).
        data: a dataset config of `zoo.data.pipeline` (`"vqa"`, `"caption"`,
            `"digits"`); builds the datasets and vocabulary from it.
        dataset_fn: instead of `data`, `fn(input_context) -> tf.data.Dataset`
            giving this input pipeline's per-replica batches
            `(features, label)`, `features` a dict by input name (plus
            optional `example_id`); or a `tf.data.Dataset` of such batches
            (single worker only). The loop repeats it; one pass is one epoch.
        validation_fn: the same for validation data, run at each epoch end.
        data_dir: the TFDS data directory for `data` (prepared there on
            first use; default TFDS's own).
        source_dir: the folder of the official MNIST files for `data`
            (default `ZOO_DATA_DIR`).
        train_split, validation_split: the splits of `data` to train and
            validate on (TFDS slices such as `"train[:2000]"` work);
            `validation_split=None` skips validation.
        max_length: text length in tokens for `data`.
        model_overrides: hyperparameters for a registered model name.
        vocabulary: the token list to write into OUT (taken from the data
            config when `data` is given).
        on_batch_ids: called after each `tf.function` call with the global
            step reached and the `example_id`s this worker consumed in it
            (for exactly-once checks; costs a host sync per call).
        extra_config: more keys to record in `config.json`.
        **options: the fields of `TrainConfig` (epochs, batch_size, strategy,
            learning_rate, seed, checkpoint_every, ...).

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: bad options, data or model; OUT is not empty and not a
            run of the zoo; or OUT holds checkpoints of a run with other
            settings (the message lists only the settings that differ).
        zoo.training.runlock.RunLocked: another process is writing OUT.
        Preempted: a termination signal arrived; the state was saved first.
        KeyboardInterrupt: Ctrl-C; the state was saved first when training
            had started.
        OSError: writing OUT failed (no space, read-only, permission); its
            `filename` names the file, and OUT is left unfinished or
            complete, never in between.
    """
    config = TrainConfig(**options)
    out = os.path.abspath(os.fspath(out))
    overrides = dict(model_overrides or {})
    splits = (train_split, validation_split)
    _validate(model, overrides, data, dataset_fn, validation_fn, splits)
    # TensorFlow fixes its thread pools at its first op.
    apply_thread_settings(model, config)
    # MultiWorkerMirroredStrategy must exist before other TensorFlow work.
    strategy = resolve_strategy(config.strategy)
    seed_everything(config)
    run = _Run(config, strategy, cluster_info(strategy), out, on_batch_ids)
    with run.hold_folder():
        if data is not None:
            dataset_fn, validation_fn, vocabulary, overrides = data_config(
                data, model, overrides, data_dir, source_dir, max_length, splits, config
            )
        recorded = dict(extra_config or {})
        if data is not None:
            recorded = {"train_split": train_split, "validation_split": validation_split, **recorded}
        return run.execute(model, overrides, data, dataset_fn, validation_fn, vocabulary, max_length, recorded)


def _validate(model, overrides, data, dataset_fn, validation_fn, splits) -> None:
    """The checks that need no data and no TensorFlow state, run before OUT is touched."""
    if (data is None) == (dataset_fn is None):
        raise ValueError("Pass exactly one of data=CONFIG or dataset_fn=...; got "
                         f"data={data!r} and dataset_fn={dataset_fn!r}.")
    if data is not None:
        if validation_fn is not None:
            raise ValueError("validation_fn goes with dataset_fn; with data=CONFIG use validation_split.")
        check_data_request(data, splits)
    if isinstance(model, str):
        from zoo.registry import resolve_hyperparameters

        resolve_hyperparameters(model, **overrides)


class _Run:
    """One call of `train`: the state shared by its phases."""

    def __init__(self, config: TrainConfig, strategy, cluster, out: str, on_batch_ids):
        self.config = config
        self.strategy = strategy
        self.cluster = cluster
        self.out = out
        self.on_batch_ids = on_batch_ids
        self.kind = strategy_kind(strategy)
        self.local_replicas = max(1, strategy.num_replicas_in_sync // cluster.num_workers)
        self.checkpoint_dir = os.path.join(out, "checkpoints")
        if not cluster.is_chief:
            # Each worker keeps its own iterator state, so its own checkpoints.
            self.checkpoint_dir = os.path.join(self.checkpoint_dir, f"worker_{cluster.worker_index}")
        self.lock_fd = None
        self.fine_tune = None
        self.text_preset = None
        self.timed_seconds = 0.0
        self.timed_steps = 0
        self.step_times: list[float] = []
        self.step_graphs = StepGraphs()

    @contextlib.contextmanager
    def hold_folder(self):
        """Creates OUT and holds its writer's lock (chief only), then clears leftovers of killed saves."""
        if not self.cluster.is_chief:
            ckpt_lib.remove_leftovers(self.checkpoint_dir)
            yield
            return
        runfiles.check_out_folder(self.out)
        os.makedirs(self.out, exist_ok=True)
        with runlock.exclusive_lock(self.out) as fd:
            self.lock_fd = fd
            ckpt_lib.remove_leftovers(self.checkpoint_dir)
            try:
                yield
            finally:
                self.lock_fd = None

    # --- the phases ------------------------------------------------------

    def execute(self, model_spec, overrides, data, dataset_fn, validation_fn, vocabulary, max_length, extra_config):
        config = self.config
        train_ds, self.steps_per_epoch = train_dataset(self, dataset_fn)
        self.total_steps = config.epochs * self.steps_per_epoch
        check_profile(config.profile, self.total_steps)
        model, hyperparameters, self.fine_tune = build_model(
            model_spec, overrides, train_ds.element_spec, self.total_steps,
            config=config, strategy=self.strategy, kind=self.kind,
        )
        self.model = model
        self.text_preset = text_preset_source(model_spec, overrides)
        val_dist = validation_dataset(self, validation_fn, [t.name for t in model.inputs])
        if config.early_stopping_patience is not None and config.monitor.startswith("val_") and val_dist is None:
            raise ValueError(
                f"Early stopping monitors {config.monitor!r} but no validation data was given; "
                "pass validation data or monitor a training metric such as 'loss'."
            )
        run_config = self._run_config(model_spec, hyperparameters, data, max_length, vocabulary, extra_config)
        iterator = iter(train_ds)
        progress = Progress()
        checkpoint = tf.train.Checkpoint(
            model=Variables("model", model.variables), optimizer=model.optimizer, iterator=iterator,
            progress=progress, metrics=Variables("metrics", model.metrics_variables),
        )
        restore_path = choose_checkpoint(self)
        previous = check_resume(self.out, restore_path, run_config)
        finished = None
        if self.cluster.num_workers == 1:
            finished = finished_marker(self.out, restore_path, previous, self.total_steps, config.epochs)
        if finished is not None:
            # Without the iterator: a finished run's data position is of no use, and a later
            # version whose input pipeline differs can still read the run.
            weights_only = tf.train.Checkpoint(
                model=checkpoint.model, optimizer=checkpoint.optimizer, progress=progress, metrics=checkpoint.metrics
            )
            self._restore(weights_only, restore_path, progress)
            return self._complete_result(finished)
        self._start_writing(run_config, vocabulary)
        manager = ckpt_lib.make_manager(checkpoint, self.checkpoint_dir, config.keep_checkpoints)
        notice = None
        if restore_path is not None:
            self._restore(checkpoint, restore_path, progress)
            notice = f"resuming from step {int(progress.step)} of {self.total_steps}"
            log.info("%s: %s", self.out, notice)
        history = self._train(iterator, val_dist, manager, progress)
        return self._finish(history, progress, run_config, vocabulary, restore_path, notice)

    def _run_config(self, model_spec, hyperparameters, data, max_length, vocabulary, extra_config) -> dict[str, Any]:
        import keras

        config = self.config
        return {
            **config.to_dict(),
            "model": model_spec if isinstance(model_spec, str) else getattr(self.model, "name", "model"),
            "hyperparameters": hyperparameters,
            "data": data,
            "max_length": max_length if data is not None else None,
            "strategy_resolved": self.kind,
            "replicas": self.strategy.num_replicas_in_sync,
            "workers": self.cluster.num_workers,
            "global_batch_size": config.batch_size * self.strategy.num_replicas_in_sync,
            "steps_per_epoch": self.steps_per_epoch,
            "vocabulary_size": len(vocabulary) if vocabulary is not None else None,
            "vocabulary_sha256": None,
            **dict(extra_config or {}),
            "zoo_version": __version__,
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
        }

    def _complete_result(self, marker) -> TrainResult:
        notice = f"already complete ({int(marker['step'])} steps); nothing to do"
        log.info("%s: %s", self.out, notice)
        metrics = {k: v for k, v in marker.items() if k not in _BOOKKEEPING and not k.startswith("best_")}
        return TrainResult(
            model=self.model, metrics=metrics, history=[], step=int(marker["step"]), epoch=int(marker["epoch"]),
            stopped_early=bool(marker.get("stopped_early")), out=self.out, already_complete=True, notice=notice,
        )

    def _start_writing(self, run_config, vocabulary) -> None:
        """The first writes of a run that trains: lock holder, no marker, vocabulary, config."""
        if not self.cluster.is_chief:
            return
        runlock.write_holder(self.lock_fd)
        runfiles.invalidate(self.out)
        if vocabulary is not None:
            run_config["vocabulary_sha256"] = runfiles.write_vocabulary(self.out, vocabulary)
        runfiles.write_config(self.out, run_config)

    def _restore(self, checkpoint, restore_path, progress) -> None:
        try:
            status = checkpoint.restore(restore_path)
        except tf.errors.OpError as error:
            if "restore dataset iterator" not in str(error):
                raise
            raise ValueError(
                f"The checkpoint {restore_path} holds its place in an input pipeline that differs from "
                "this one (the data's preparation changed since it was saved, e.g. with a new zoo version), "
                "so the run cannot resume exactly where it stopped. Train again into a new --out directory."
            ) from error
        try:
            status.assert_existing_objects_matched()
        except AssertionError as error:
            raise ValueError(
                f"The checkpoint {restore_path} does not match this model and optimizer ({error}). "
                "Use a new --out directory for a different model."
            ) from error
        log.debug("Restored %s (step %d, epoch %d).", restore_path, int(progress.step), int(progress.epoch))

    def make_train_exec(self, iterator):
        """The training function over `iterator`, traced for the model's current trainable weights."""
        return make_train_function(
            self.strategy, self.model, iterator, [t.name for t in self.model.inputs],
            track_ids=self.on_batch_ids is not None, jit=self.config.jit, step_graphs=self.step_graphs,
        )

    def _train(self, iterator, val_dist, manager, progress) -> list[dict[str, float]]:
        self.iterator = iterator
        if self.fine_tune is not None:
            # The restored epoch decides which towers are frozen now.
            self.fine_tune.set_epoch(int(progress.epoch))
        train_exec = self.make_train_exec(iterator)
        val_exec = make_validation_function(self.strategy, self.model) if val_dist is not None else None
        writers = summary_writers(self.out, self.cluster.is_chief)
        self.profiler = StepProfiler(self.config.profile, profile_logdir(self.out), enabled=self.cluster.is_chief)
        try:
            with stop_signals(self, manager, progress) as stop_check:
                return run_epochs(self, train_exec, val_exec, val_dist, manager, progress, writers, stop_check)
        finally:
            # The registry would keep every traced step, and the weights it holds, for good.
            self.step_graphs.release()
            # A run stopped inside the range still writes what was traced.
            self.profiler.close()
            # Closing (not just flushing) releases the event files, so the folder can be moved or unmounted.
            for writer in writers.values():
                writer.close()

    def _finish(self, history, progress, run_config, vocabulary, restore_path, notice) -> TrainResult:
        final = dict(history[-1]) if history else self._final_metrics_from()
        examples_per_second = None
        if self.timed_seconds > 0:
            global_batch = self.config.batch_size * self.strategy.num_replicas_in_sync
            examples_per_second = self.timed_steps * global_batch / self.timed_seconds
        result_metrics = {
            **final,
            "examples_per_second": examples_per_second,
            "step": int(progress.step),
            "epoch": int(progress.epoch),
            "stopped_early": bool(progress.stopped),
        }
        if not math.isnan(float(progress.best)):
            result_metrics[f"best_{self.config.monitor}"] = float(progress.best)
        self._write_artifacts(run_config, result_metrics, vocabulary)
        return TrainResult(
            model=self.model, metrics=final, history=history, step=int(progress.step), epoch=int(progress.epoch),
            stopped_early=bool(progress.stopped), out=self.out, examples_per_second=examples_per_second,
            step_times=self.step_times, resumed_from_step=ckpt_lib.checkpoint_step(restore_path) if restore_path else None,
            notice=notice, profile_dir=self.profiler.trace_dir,
        )

    def _final_metrics_from(self) -> dict[str, float]:
        # A restart whose checkpoint is already at the end trains nothing; report what metrics.json said.
        path = os.path.join(self.out, runfiles.METRICS)
        if not os.path.exists(path):
            return {}
        from zoo.core.jsonio import read_json

        saved = read_json(path)
        return {k: v for k, v in saved.items() if k not in _BOOKKEEPING and not k.startswith("best_")}

    def _write_artifacts(self, run_config, metrics, vocabulary) -> None:
        if self.cluster.is_chief:
            runfiles.write_final(self.out, model=self.model, config=run_config, metrics=metrics, vocabulary=vocabulary,
                                 text_preset=self.text_preset)
            return
        # Other workers save too, in step with the chief, into a folder they delete.
        scratch = tempfile.mkdtemp(prefix=f"zoo-worker{self.cluster.worker_index}-")
        try:
            atomic_save_model(self.model, os.path.join(scratch, "model.keras"), overwrite=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
