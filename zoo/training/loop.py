"""The training loop: one loop for every `tf.distribute` strategy, with exact resume.

Keras 3's `fit` cannot serve here: it fails under `MultiWorkerMirroredStrategy`
and its `BackupAndRestore` replays an interrupted epoch from its first batch.
This loop keeps the model's own `train_step` (so losses, metrics and mixed
precision behave as in `fit`) and owns everything around it:

* each worker reads its shard through one plain `tf.data` iterator over the
  repeated dataset and hands each local replica its batch with
  `experimental_distribute_values_from_function` (the iterators of
  `distribute_datasets_from_function` cannot be checkpointed), so the
  iterator, and with it the position inside the epoch and the shuffle state,
  goes into every checkpoint;
* several steps run per `tf.function` call (`steps_per_execution`), each
  through `strategy.run`;
* checkpoints hold model, optimizer, metrics, step and epoch counters,
  early-stopping state and the iterator; a restart continues at the saved
  step, and a SIGTERM (to any worker, for multi-worker runs) saves and stops.

>>> import zoo
>>> result = zoo.train("cnn_lstm_concat_seed", data="vqa", out="runs/vqa", epochs=2)
>>> result.metrics["val_accuracy"]
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.core import keys
from zoo.core.atomic import atomic_save_model
from zoo.core.jsonio import to_json, write_json
from zoo.core.version import __version__
from zoo.training import checkpoints as ckpt_lib
from zoo.training.config import TrainConfig, make_optimizer
from zoo.training.strategy import cluster_info, resolve_strategy, strategy_kind

__all__ = ["train", "TrainResult", "Preempted", "EXAMPLE_ID", "PREEMPTED_EXIT_CODE"]

log = logging.getLogger(__name__)

# Optional int64 feature tagging each example; dropped before the model sees it.
EXAMPLE_ID = keys.EXAMPLE_ID
# Exit status of a preempted run that saved its state; a scheduler restarts it.
PREEMPTED_EXIT_CODE = 42
# Settings a resumed run must share with the run that wrote the checkpoints.
_RESUME_KEYS = ("model", "hyperparameters", "data", "batch_size", "global_batch_size", "steps_per_epoch", "seed")


class Preempted(Exception):
    """Raised by `train` after a termination signal made it save a checkpoint and stop.

    Running the same training again continues from `step`.
    """

    def __init__(self, step: int, checkpoint: str | None):
        super().__init__(f"Training was stopped by a termination signal at step {step}; the state is saved in {checkpoint}. Run the same command again to continue.")
        self.step = step
        self.checkpoint = checkpoint


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

    Args:
        model: a registered model name (built with `model_overrides`), a
            function returning a new uncompiled `keras.Model`, or a
            `keras.Model` (default strategy only: a model for another
            strategy must be built inside its scope, so pass a function).
        out: the run directory. It receives `config.json`, `metrics.json`,
            `model.keras`, `vocabulary.txt` (when a vocabulary is known),
            `checkpoints/` and `logs/` (TensorBoard).
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
        ValueError: bad options, data or model, or OUT holds checkpoints of a
            run with other settings.
        Preempted: a termination signal arrived; the state was saved first.
    """
    config = TrainConfig(**options)
    if (data is None) == (dataset_fn is None):
        raise ValueError("Pass exactly one of data=CONFIG or dataset_fn=...; got "
                         f"data={data!r} and dataset_fn={dataset_fn!r}.")
    out = os.path.abspath(os.fspath(out))
    # MultiWorkerMirroredStrategy must exist before other TensorFlow work.
    strategy = resolve_strategy(config.strategy)
    _seed_everything(config)
    cluster = cluster_info(strategy)
    overrides = dict(model_overrides or {})
    if data is not None:
        if validation_fn is not None:
            raise ValueError("validation_fn goes with dataset_fn; with data=CONFIG use validation_split.")
        dataset_fn, validation_fn, vocabulary, overrides = _data_config(
            data, model, overrides, data_dir, source_dir, max_length, (train_split, validation_split), config
        )
    recorded = dict(extra_config or {})
    if data is not None:
        recorded = {"train_split": train_split, "validation_split": validation_split, **recorded}
    run = _Run(config, strategy, cluster, out, on_batch_ids)
    return run.execute(model, overrides, data, dataset_fn, validation_fn, vocabulary, max_length, recorded)


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
        self.timed_seconds = 0.0
        self.timed_steps = 0
        self.step_times: list[float] = []

    # --- the phases ------------------------------------------------------

    def execute(self, model_spec, overrides, data, dataset_fn, validation_fn, vocabulary, max_length, extra_config):
        config = self.config
        if self.cluster.is_chief:
            os.makedirs(self.out, exist_ok=True)
        train_ds, steps_per_epoch = self._train_dataset(dataset_fn)
        self.steps_per_epoch = steps_per_epoch
        total_steps = config.epochs * steps_per_epoch
        model, hyperparameters = self._build_model(model_spec, overrides, train_ds.element_spec, total_steps)
        self.model = model
        self.input_names = [t.name for t in model.inputs]
        val_dist = self._validation_dataset(validation_fn)
        if config.early_stopping_patience is not None and config.monitor.startswith("val_") and val_dist is None:
            raise ValueError(
                f"Early stopping monitors {config.monitor!r} but no validation data was given; "
                "pass validation data or monitor a training metric such as 'loss'."
            )

        run_config = {
            **config.to_dict(),
            "model": model_spec if isinstance(model_spec, str) else getattr(model, "name", "model"),
            "hyperparameters": hyperparameters,
            "data": data,
            "max_length": max_length if data is not None else None,
            "strategy_resolved": self.kind,
            "replicas": self.strategy.num_replicas_in_sync,
            "workers": self.cluster.num_workers,
            "global_batch_size": config.batch_size * self.strategy.num_replicas_in_sync,
            "steps_per_epoch": steps_per_epoch,
            "vocabulary_size": len(vocabulary) if vocabulary is not None else None,
            **dict(extra_config or {}),
        }
        run_config.update(_versions())

        iterator = iter(train_ds)
        progress = _Progress()
        state = {
            "model": _Variables("model", model.variables),
            "optimizer": model.optimizer,
            "iterator": iterator,
            "progress": progress,
            "metrics": _Variables("metrics", model.metrics_variables),
        }
        checkpoint = tf.train.Checkpoint(**state)
        restore_path = self._choose_checkpoint()
        self._check_resume(restore_path, run_config)
        if self.cluster.is_chief:
            write_json(os.path.join(self.out, "config.json"), to_json(run_config))
        manager = ckpt_lib.make_manager(checkpoint, self.checkpoint_dir, config.keep_checkpoints)
        if restore_path is not None:
            status = checkpoint.restore(restore_path)
            try:
                status.assert_existing_objects_matched()
            except AssertionError as error:
                raise ValueError(
                    f"The checkpoint {restore_path} does not match this model and optimizer ({error}). "
                    "Use a new --out directory for a different model."
                ) from error
            log.info("Restored %s (step %d, epoch %d).", restore_path, int(progress.step), int(progress.epoch))

        train_exec = self._make_train_function(iterator)
        val_exec = self._make_validation_function() if val_dist is not None else None
        writers = self._summary_writers()
        with self._preemption(manager, progress) as preempted:
            history = self._loop(train_exec, val_exec, val_dist, manager, progress, writers, preempted)
        for writer in writers.values():
            writer.flush()

        final = dict(history[-1]) if history else self._final_metrics_from(progress)
        examples_per_second = None
        if self.timed_seconds > 0:
            global_batch = config.batch_size * self.strategy.num_replicas_in_sync
            examples_per_second = self.timed_steps * global_batch / self.timed_seconds
        result_metrics = {
            **final,
            "examples_per_second": examples_per_second,
            "step": int(progress.step),
            "epoch": int(progress.epoch),
            "stopped_early": bool(progress.stopped),
        }
        if not math.isnan(float(progress.best)):
            result_metrics[f"best_{config.monitor}"] = float(progress.best)
        self._write_artifacts(result_metrics, vocabulary)
        return TrainResult(
            model=model,
            metrics=final,
            history=history,
            step=int(progress.step),
            epoch=int(progress.epoch),
            stopped_early=bool(progress.stopped),
            out=self.out,
            examples_per_second=examples_per_second,
            step_times=self.step_times,
        )

    def _loop(self, train_exec, val_exec, val_dist, manager, progress, writers, preempted):
        config, model = self.config, self.model
        spe = self.steps_per_epoch
        step, epoch = int(progress.step), int(progress.epoch)
        history: list[dict[str, float]] = []
        display = _Display(config.verbose and self.cluster.is_chief, spe, config.epochs)
        read_every = max(20, config.steps_per_execution)
        while epoch < config.epochs and not bool(progress.stopped):
            epoch_start = epoch * spe
            if step == epoch_start:
                model.reset_metrics()
            display.start_epoch(epoch, step - epoch_start)
            # Throughput counts from the end of each epoch's first call, so
            # tracing and epoch-end work stay out of it.
            mark = None
            while step < epoch_start + spe:
                count = min(config.steps_per_execution, epoch_start + spe - step)
                ids = train_exec(count)
                now = time.perf_counter()
                if mark is not None:
                    self.timed_seconds += now - mark
                    self.timed_steps += count
                    self.step_times.append((now - mark) / count)
                mark = now
                previous, step = step, step + count
                if self.on_batch_ids is not None:
                    self.on_batch_ids(step, ids.numpy())
                preempted(step, epoch)
                end_of_epoch = step == epoch_start + spe
                if config.checkpoint_every and not end_of_epoch and step // config.checkpoint_every > previous // config.checkpoint_every:
                    progress.set(step=step, epoch=epoch)
                    manager.save(checkpoint_number=step)
                if config.verbose and not end_of_epoch and step // read_every > previous // read_every:
                    # Every worker reads, so multi-worker metric reductions line up.
                    display.update(step - epoch_start, _read_metrics(model))
                else:
                    display.update(step - epoch_start, None)
            logs = _read_metrics(model)
            if val_exec is not None:
                model.reset_metrics()
                val_exec(val_dist)
                logs.update({f"val_{k}": v for k, v in _read_metrics(model).items()})
            logs["learning_rate"] = _current_learning_rate(model)
            epoch += 1
            self._early_stopping(progress, logs)
            progress.set(step=step, epoch=epoch)
            manager.save(checkpoint_number=step)
            display.end_epoch(step - epoch_start, logs)
            self._summaries(writers, epoch, logs)
            history.append(logs)
        return history

    # --- data ------------------------------------------------------------

    def _input_context(self) -> tf.distribute.InputContext:
        return tf.distribute.InputContext(
            num_input_pipelines=self.cluster.num_workers,
            input_pipeline_id=self.cluster.worker_index,
            num_replicas_in_sync=self.strategy.num_replicas_in_sync,
        )

    def _call_dataset_fn(self, dataset_fn, what: str) -> tf.data.Dataset:
        if isinstance(dataset_fn, tf.data.Dataset):
            if self.cluster.num_workers > 1:
                raise ValueError(
                    f"The {what} data is a tf.data.Dataset, but this run has {self.cluster.num_workers} "
                    "workers: pass a function input_context -> Dataset that reads this worker's shard."
                )
            dataset = dataset_fn
        elif callable(dataset_fn):
            dataset = dataset_fn(self._input_context())
        else:
            raise ValueError(f"The {what} data must be a tf.data.Dataset or a function returning one; got {dataset_fn!r}.")
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(f"The {what} dataset function returned {type(dataset).__name__}, expected a tf.data.Dataset.")
        _check_element_spec(dataset.element_spec, what)
        return dataset

    def _train_dataset(self, dataset_fn):
        config = self.config
        dataset = self._call_dataset_fn(dataset_fn, "training")
        if self.on_batch_ids is not None and EXAMPLE_ID not in dataset.element_spec[0]:
            raise ValueError(f"on_batch_ids needs an {EXAMPLE_ID!r} feature in the training batches.")
        cardinality = int(dataset.cardinality())
        if config.steps_per_epoch is not None:
            steps = config.steps_per_epoch
        elif cardinality >= 0:
            steps = cardinality // self.local_replicas
            if steps == 0:
                raise ValueError(
                    f"The training data has {cardinality} batch(es) per input pipeline, fewer than the "
                    f"{self.local_replicas} replicas each step needs; use more data or a smaller batch size."
                )
            if cardinality % self.local_replicas:
                log.warning(
                    "%d training batches do not split over %d replicas; the last %d batch(es) of each "
                    "pass are skipped.", cardinality, self.local_replicas, cardinality % self.local_replicas,
                )
                dataset = dataset.take(steps * self.local_replicas)
        else:
            raise ValueError(
                "The training dataset's length is unknown or infinite "
                f"(cardinality {cardinality}); pass steps_per_epoch."
            )
        steps = self._agree_on_min(steps)
        if cardinality != tf.data.INFINITE_CARDINALITY:
            dataset = dataset.repeat()
        return dataset, steps

    def _validation_dataset(self, validation_fn):
        if validation_fn is None:
            return None
        steps = self.config.validation_steps
        input_names = set(self.input_names)

        def per_worker(input_context):
            if isinstance(validation_fn, tf.data.Dataset):
                dataset = validation_fn
            else:
                dataset = validation_fn(input_context)
            _check_element_spec(dataset.element_spec, "validation")
            if steps is not None:
                dataset = dataset.take(steps * self.local_replicas)
            return dataset.map(lambda *element: _model_inputs(element, input_names)[0])

        if isinstance(validation_fn, tf.data.Dataset) and self.cluster.num_workers > 1:
            raise ValueError("The validation data is a tf.data.Dataset, but this run has several workers: pass a function.")
        return self.strategy.distribute_datasets_from_function(per_worker)

    def _agree_on_min(self, value: int) -> int:
        if self.cluster.num_workers == 1:
            return value
        per_replica = self.strategy.experimental_distribute_values_from_function(
            lambda _: tf.constant([value], tf.int64)
        )
        agreed = int(tf.reduce_min(self.strategy.gather(per_replica, axis=0)))
        if agreed != value:
            log.warning("Workers have different numbers of batches; every worker uses %d steps per epoch.", agreed)
        return agreed

    # --- model -----------------------------------------------------------

    def _build_model(self, model_spec, overrides, element_spec, total_steps):
        import keras

        config = self.config
        hyperparameters = None
        with _precision_policy(config.mixed_precision):
            with self.strategy.scope():
                if isinstance(model_spec, str):
                    import zoo
                    from zoo.registry import resolve_hyperparameters

                    hyperparameters = resolve_hyperparameters(model_spec, **overrides)
                    model = zoo.build(model_spec, **overrides)
                elif isinstance(model_spec, keras.Model):
                    if overrides:
                        raise ValueError(f"model_overrides={overrides!r} need a registered model name, not a model object.")
                    if self.kind != "default" or config.mixed_precision:
                        raise ValueError(
                            f"A ready-made keras.Model works only with the default strategy and full precision "
                            f"(got strategy {self.kind!r}, mixed_precision={config.mixed_precision}); pass a "
                            "function that builds the model so it is built inside the strategy's scope."
                        )
                    model = model_spec
                elif callable(model_spec):
                    if overrides:
                        raise ValueError(f"model_overrides={overrides!r} need a registered model name, not a function.")
                    model = model_spec()
                    if not isinstance(model, keras.Model):
                        raise ValueError(f"The model function returned {type(model).__name__}, expected a keras.Model.")
                else:
                    raise ValueError(f"model={model_spec!r}: expected a registered name, a keras.Model or a function returning one.")
                if config.jit and self.strategy.num_replicas_in_sync > 1 and self.kind != "tpu":
                    raise ValueError(
                        f"jit=True needs a single replica (the {self.kind!r} strategy has "
                        f"{self.strategy.num_replicas_in_sync}): XLA cannot compile the cross-replica "
                        "gradient sum. Drop --jit or train on one device."
                    )
                optimizer = make_optimizer(config, total_steps)
                model.compile(
                    optimizer=optimizer,
                    loss="sparse_categorical_crossentropy",
                    metrics=_accuracy_metrics(model),
                    jit_compile=config.jit,
                )
                _build_training_state(model, _strip_spec(element_spec, {t.name for t in model.inputs}))
        return model, hyperparameters

    def _make_train_function(self, iterator):
        strategy, model = self.strategy, self.model
        input_names = set(self.input_names)
        track_ids = self.on_batch_ids is not None
        replica_step = model.train_step
        if self.config.jit:
            replica_step = tf.function(model.train_step, jit_compile=True, reduce_retracing=True)

        def next_batch():
            ids = []

            def value_fn(_):
                batch, example_ids = _model_inputs(next(iterator), input_names)
                ids.append(example_ids)
                return batch

            batch = strategy.experimental_distribute_values_from_function(value_fn)
            return batch, (tf.concat(ids, axis=0) if track_ids else None)

        @tf.function
        def one_step():
            batch, ids = next_batch()
            strategy.run(replica_step, args=(batch,))
            return ids if track_ids else tf.zeros([0], tf.int64)

        @tf.function
        def several_steps(count):
            collected = tf.TensorArray(tf.int64, size=0, dynamic_size=True, infer_shape=False, element_shape=[None])
            for i in tf.range(count):
                batch, ids = next_batch()
                strategy.run(replica_step, args=(batch,))
                if track_ids:
                    collected = collected.write(i, ids)
            if track_ids:
                return collected.concat()
            return tf.zeros([0], tf.int64)

        def train_exec(count: int):
            # A single step runs without the while loop, whose frame overhead
            # and nesting around the model's own loops cost measurable time.
            if count == 1:
                return one_step()
            return several_steps(tf.constant(count, tf.int32))

        return train_exec

    def _make_validation_function(self):
        strategy, model = self.strategy, self.model

        @tf.function
        def val_exec(distributed_dataset):
            for batch in distributed_dataset:
                strategy.run(model.test_step, args=(batch,))

        return val_exec

    # --- state -----------------------------------------------------------

    def _choose_checkpoint(self) -> str | None:
        path = ckpt_lib.find_restorable(self.checkpoint_dir)
        if self.cluster.num_workers == 1:
            return path
        # A kill can land between two workers' saves; all restore the newest step they all have.
        step = ckpt_lib.checkpoint_step(path) if path else -1
        agreed = self._agree_on_min(step)
        if agreed < 0:
            return None
        if agreed != step:
            candidate = os.path.join(self.checkpoint_dir, f"{ckpt_lib.CHECKPOINT_NAME}-{agreed}")
            if tf.io.gfile.exists(candidate + ".index"):
                log.warning("Worker %d restores step %d, the newest step every worker saved.", self.cluster.worker_index, agreed)
                return candidate
            raise ValueError(
                f"Worker {self.cluster.worker_index} has no checkpoint of step {agreed}, the newest step every "
                f"worker saved (its newest is {step}); the checkpoints in {self.out} cannot be resumed together."
            )
        return path

    def _check_resume(self, restore_path, run_config):
        if restore_path is None:
            return
        path = os.path.join(self.out, "config.json")
        if not os.path.exists(path):
            return
        import json

        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
        current = to_json(run_config)
        changed = [k for k in _RESUME_KEYS if k in previous and previous.get(k) != current.get(k)]
        if changed:
            details = "; ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in changed)
            raise ValueError(
                f"{self.out} holds checkpoints of a run with other settings ({details}). Resume with the "
                "same settings, or use a new --out directory."
            )

    def _early_stopping(self, progress, logs):
        config = self.config
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

    @contextlib.contextmanager
    def _preemption(self, manager, progress):
        """Yields `check(step, epoch)`, which saves and raises `Preempted` after a termination signal."""
        if self.kind == "multi_worker" and self.cluster.num_workers > 1:
            with self._multi_worker_preemption(manager, progress) as check:
                yield check
            return
        received = threading.Event()
        previous = None
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.set())

        def check(step, epoch):
            if received.is_set():
                progress.set(step=step, epoch=epoch)
                path = manager.save(checkpoint_number=step)
                raise Preempted(step, path)

        try:
            yield check
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)

    @contextlib.contextmanager
    def _multi_worker_preemption(self, manager, progress):
        holder = {}

        def exit_fn():
            raise Preempted(holder["step"], manager.latest_checkpoint)

        previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            self.strategy.cluster_resolver,
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

    def _final_metrics_from(self, progress) -> dict[str, float]:
        # A restart of a finished run trains nothing; report what metrics.json says.
        path = os.path.join(self.out, "metrics.json")
        if os.path.exists(path):
            import json

            with open(path, encoding="utf-8") as handle:
                saved = json.load(handle)
            return {k: v for k, v in saved.items() if k not in ("step", "epoch", "stopped_early", "examples_per_second") and not k.startswith("best_")}
        return {}

    # --- output ----------------------------------------------------------

    def _summary_writers(self):
        if not self.cluster.is_chief:
            return {}
        logs = os.path.join(self.out, "logs")
        return {
            "train": tf.summary.create_file_writer(os.path.join(logs, "train")),
            "validation": tf.summary.create_file_writer(os.path.join(logs, "validation")),
        }

    def _summaries(self, writers, epoch, logs):
        if not writers:
            return
        for key, value in logs.items():
            if key.startswith("val_"):
                writer, name = writers["validation"], f"epoch_{key[4:]}"
            else:
                writer, name = writers["train"], f"epoch_{key}"
            with writer.as_default():
                _scalar_summary(name, value, epoch)

    def _write_artifacts(self, metrics, vocabulary):
        model = self.model
        if self.cluster.is_chief:
            write_json(os.path.join(self.out, "metrics.json"), to_json(metrics))
            if vocabulary is not None:
                from zoo.data.text import save_vocabulary

                save_vocabulary(vocabulary, os.path.join(self.out, "vocabulary.txt"))
            atomic_save_model(model, os.path.join(self.out, "model.keras"), overwrite=True)
        else:
            # Other workers save too, in step with the chief, into a folder they delete.
            scratch = tempfile.mkdtemp(prefix=f"zoo-worker{self.cluster.worker_index}-")
            try:
                atomic_save_model(model, os.path.join(scratch, "model.keras"), overwrite=True)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)


# --- helpers -----------------------------------------------------------------


class _Progress(tf.Module):
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


class _Variables(tf.Module):
    """A fixed list of Keras variables as one checkpointable object.

    `tf.train.Checkpoint` does not see inside a Keras 3 model, so the model's
    variables (weights, non-trainable statistics, random-seed states) and
    metric variables are listed explicitly, in the model's stable order.
    """

    def __init__(self, name: str, variables):
        super().__init__(name=name)
        self.variables_list = [v.value if hasattr(v, "value") else v for v in variables]


class _Display:
    """Progress bar on the chief: live on a terminal, one line per epoch otherwise."""

    def __init__(self, enabled: bool, steps_per_epoch: int, epochs: int):
        self.enabled = bool(enabled)
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.interactive = self.enabled and sys.stdout.isatty()
        self.bar = None

    def start_epoch(self, epoch: int, done: int):
        if not self.enabled:
            return
        import keras

        print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self.bar = keras.utils.Progbar(self.steps_per_epoch, verbose=1 if self.interactive else 2)
        if done:
            self.bar.update(done)

    def update(self, done: int, logs):
        if self.bar is not None and self.interactive:
            self.bar.update(done, list(logs.items()) if logs else None)

    def end_epoch(self, done: int, logs):
        if self.bar is not None:
            self.bar.update(done, list(logs.items()), finalize=True)
            self.bar = None


def _scalar_summary(name: str, value: float, step: int) -> None:
    # tf.summary.scalar lives in the tensorboard package; this writes the same
    # event (a float32 tensor tagged for the "scalars" plugin) with core TF only.
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=metadata)


def _seed_everything(config: TrainConfig) -> None:
    """Seeds the run and turns op determinism on when asked.

    Raises:
        ValueError: for jit=True when op determinism is already on in this
            process (TensorFlow has no public way to turn it off again).
    """
    import keras

    if config.jit and not config.op_determinism and _op_determinism_enabled():
        raise ValueError(
            "jit=True cannot run here: op determinism was turned on earlier in this process (by a seeded or "
            "deterministic run, or tf.config.experimental.enable_op_determinism), TensorFlow cannot turn it "
            "off, and XLA has no deterministic MaxPool gradient. Train with jit in a new process."
        )
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    if config.op_determinism:
        tf.config.experimental.enable_op_determinism()


def _op_determinism_enabled() -> bool:
    # Only TensorFlow's internal config module can tell; without it, assume off
    # and let XLA's own error speak.
    from tensorflow.python.framework import config as tf_config

    probe = getattr(tf_config, "is_op_determinism_enabled", None)
    return bool(probe()) if probe is not None else False


@contextlib.contextmanager
def _precision_policy(mixed: bool):
    import keras

    if not mixed:
        yield
        return
    previous = keras.config.dtype_policy()
    policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _accuracy_metrics(model):
    output = model.output
    if isinstance(output, dict):
        return {name: ["accuracy"] for name in output}
    if isinstance(output, list | tuple):
        return [["accuracy"] for _ in output]
    return ["accuracy"]


def _check_element_spec(spec, what: str) -> None:
    if not isinstance(spec, tuple) or len(spec) not in (2, 3) or not isinstance(spec[0], dict):
        raise ValueError(
            f"The {what} dataset must yield (features, label) or (features, label, sample_weight) with "
            f"features a dict keyed by input name; its elements are {spec}."
        )


def _strip_spec(spec, input_names: set[str]):
    features = {k: v for k, v in spec[0].items() if k in input_names}
    missing = sorted(input_names - set(spec[0]))
    if missing:
        raise ValueError(
            f"The training batches lack the model input(s) {missing}; they have {sorted(spec[0])}."
        )
    return (features, *spec[1:])


def _model_inputs(element, input_names: set[str]):
    """Splits a dataset element into the model's (features, label[, weight]) and the example ids."""
    features, *rest = element
    ids = features.get(EXAMPLE_ID)
    kept = {k: v for k, v in features.items() if k in input_names}
    return (kept, *rest), ids


def _build_training_state(model, spec) -> None:
    """Creates the model, metric and optimizer variables before checkpoints need them."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:
        symbolic_build(data_batch=spec)
    else:
        batch = tf.nest.map_structure(lambda s: tf.zeros([1, *s.shape[1:]], s.dtype), spec)
        features, label, *weight = batch
        prediction = model(features, training=False)
        model.compute_loss(features, label, prediction, weight[0] if weight else None)
        model.compute_metrics(features, label, prediction, weight[0] if weight else None)
        model.reset_metrics()
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _read_metrics(model) -> dict[str, float]:
    values = {}
    for key, value in model.get_metrics_result().items():
        values[key] = float(np.asarray(value))
    return values


def _current_learning_rate(model) -> float:
    rate = model.optimizer.learning_rate
    return float(np.asarray(rate))


def _data_config(data, model_spec, overrides, data_dir, source_dir, max_length, splits, config):
    """Datasets, vocabulary and model overrides for a `zoo.data.pipeline` config."""
    if importlib.util.find_spec("zoo.data.pipeline") is None:
        raise ValueError(f"data={data!r} needs zoo.data.pipeline, which this installation lacks; pass dataset_fn instead.")
    from zoo.data import pipeline
    from zoo.data.text import Tokenizer

    if data not in pipeline.CONFIGS:
        raise ValueError(f"Unknown data config {data!r}; expected one of {list(pipeline.CONFIGS)}.")
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    source_dir = os.fspath(source_dir) if source_dir is not None else None
    vocabulary = tokenizer = None
    if data in pipeline.TEXT_CONFIGS:
        vocabulary = pipeline.fit_vocabulary(data, data_dir=data_dir, source_dir=source_dir)
        tokenizer = Tokenizer(vocabulary, max_length)
    if isinstance(model_spec, str):
        from zoo.registry import get_entry

        accepted = get_entry(model_spec).defaults
        wanted = {"max_length": max_length, "num_classes": len(pipeline.class_names(data))}
        if vocabulary is not None:
            wanted["vocab_size"] = len(vocabulary)
        for key, value in wanted.items():
            if key in accepted and overrides.get(key) is None:
                overrides[key] = value
    seed = config.seed if config.seed is not None else 0
    train_split, validation_split = splits

    def make(split, shuffle, counted):
        def dataset_fn(input_context):
            options = dict(
                data_dir=data_dir,
                source_dir=source_dir,
                # make_dataset divides a global batch by the replicas.
                batch_size=config.batch_size * input_context.num_replicas_in_sync,
                max_length=max_length,
                input_context=input_context,
                repeat=False,
            )
            dataset = pipeline.make_dataset(
                data, split, tokenizer=tokenizer, shuffle=shuffle, seed=seed,
                deterministic=config.op_determinism, **options,
            )
            if counted and int(dataset.cardinality()) < 0:
                # The loop needs the pass length to place epoch boundaries.
                batches = _count_batches(pipeline, data, split, input_context, options)
                dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
            return dataset

        return dataset_fn

    validation = make(validation_split, False, False) if validation_split else None
    return make(train_split, True, True), validation, vocabulary, overrides


def _count_batches(pipeline, data, split, input_context, options) -> int:
    """Batches in one pass of this input pipeline's shard of a data config's split."""
    per_replica = input_context.get_per_replica_batch_size(options["batch_size"])
    if input_context.num_input_pipelines == 1:
        count = pipeline.num_examples(data, split, data_dir=options["data_dir"], source_dir=options["source_dir"])
        return -(-count // per_replica)
    # A shard's size depends on how the pipeline assigns examples; counting its
    # raw batches once is exact whatever that rule is.
    raw = pipeline.make_dataset(data, split, mode="raw", shuffle=False, **options)
    return int(raw.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def _versions() -> dict[str, str]:
    import keras

    return {"zoo_version": __version__, "tensorflow_version": tf.__version__, "keras_version": keras.__version__}
