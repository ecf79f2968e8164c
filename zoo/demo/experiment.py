"""One demo trial: train a grid entry with one seed through `zoo.train`, then evaluate it on test."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.core.jsonio import to_json
from zoo.demo import metrics as metrics_lib
from zoo.demo.augment import augment_batch
from zoo.demo.datacontext import FULL_SPLITS, DataContext, Splits
from zoo.demo.grids import GridEntry, Trial
from zoo.demo.recipes import RECIPES
from zoo.registry import get_entry
from zoo.training import data_overrides, train

__all__ = ["resolved_overrides", "primary_output", "train_trial", "predict"]


def resolved_overrides(entry: GridEntry, data: DataContext) -> dict[str, Any]:
    """The entry's overrides plus what the data fixes (vocabulary size, text length, classes).

    Raises:
        ValueError: if the entry names a hyperparameter its model does not have.
    """
    unknown = sorted(set(dict(entry.overrides)) - set(get_entry(entry.model).defaults))
    if unknown:
        raise ValueError(f"Grid entry {entry.label!r}: {entry.model} has no hyperparameter(s) {unknown}.")
    return data_overrides(
        entry.model,
        num_classes=len(data.class_names),
        vocab_size=len(data.vocabulary) if data.has_text else None,
        max_length=data.max_length if data.has_text else None,
        overrides=dict(entry.overrides),
    )


def _label_transform(entry: GridEntry) -> Callable | None:
    """For a multi-output model: the label dict its heads train on, derived from the label."""
    tasks = dict(entry.overrides).get("tasks")
    if not tasks:
        return None
    derived = {
        "answer": lambda y: y,
        "digit": lambda y: y,
        # Answer ids 0 and 1 are "no" and "yes" (see zoo.data.pipeline.class_names("vqa")).
        "yes_no_question": lambda y: tf.cast(y < 2, tf.int32),
        "parity": lambda y: tf.math.floormod(y, 2),
    }
    missing = [name for name, _ in tasks if name not in derived]
    if missing:
        raise ValueError(f"Grid entry {entry.label!r}: no label is known for task(s) {missing}; known: {sorted(derived)}.")
    return lambda y: {name: derived[name](y) for name, _ in tasks}


def primary_output(entry: GridEntry) -> str | None:
    """The output scored in the table for a multi-output model (its first task), else None."""
    tasks = dict(entry.overrides).get("tasks")
    return tasks[0][0] if tasks else None


def train_trial(
    trial: Trial,
    data: DataContext,
    out: str | os.PathLike,
    *,
    splits: Splits = FULL_SPLITS,
    batch_size: int | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Trains one grid entry with one seed through `zoo.train` and evaluates it on the test split.

    The run directory `out/runs/<config>/<label>/seed<k>` is made afresh (a
    previous one of the same trial is removed) and follows the run-directory
    contract of `zoo.train`.

    Args:
        trial: what to train.
        data: from `prepare_data` for the trial's config.
        out: the demo's output folder.
        splits: train / validation / test slices.
        batch_size: training batch size; None = the recipe's.
        verbose: passed to `zoo.train` (1 = a line per epoch).

    Returns:
        A JSON-ready record: the trial's settings, parameter count, training
        seconds, per-epoch history and test metrics (`test`), plus `run_dir`.

    Raises:
        ValueError: if the trial's config differs from `data`'s.
    """
    entry = trial.entry
    if entry.config != data.config:
        raise ValueError(f"Trial for config {entry.config!r} got data of config {data.config!r}.")
    from zoo.data import pipeline

    recipe = RECIPES[entry.recipe]
    batch_size = batch_size or recipe.batch_size
    run_dir = os.path.join(os.fspath(out), "runs", trial.run_name)
    if os.path.lexists(run_dir):
        # A run directory resumes from its checkpoints; a demo row must train from scratch.
        shutil.rmtree(run_dir)
    overrides = resolved_overrides(entry, data)
    label_fn = _label_transform(entry)
    train_split = data.split("train", splits.train)
    num_train = pipeline.num_examples(data.config, train_split, data_dir=data.data_dir, source_dir=data.source_dir)
    steps_per_epoch = math.ceil(num_train / batch_size)

    def train_fn(input_context):
        ds = data.dataset(train_split, batch_size=batch_size, shuffle=True, seed=trial.seed,
                          input_context=input_context)
        if recipe.augments:
            # One fresh int64 seed per batch, different in every epoch.
            seeds = tf.data.Dataset.random(seed=trial.seed, rerandomize_each_iteration=True)
            augment = functools.partial(augment_batch, max_shift=recipe.max_shift, max_rotation=recipe.max_rotation)
            ds = tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        if label_fn is not None:
            ds = ds.map(lambda features, label: (features, label_fn(label)))
        return ds.prefetch(tf.data.AUTOTUNE)

    def validation_fn(input_context):
        ds = data.dataset(data.split("validation", splits.validation), batch_size=512, input_context=input_context)
        if label_fn is not None:
            ds = ds.map(lambda features, label: (features, label_fn(label)))
        return ds

    start = time.perf_counter()
    result = train(
        entry.model,
        out=run_dir,
        dataset_fn=train_fn,
        validation_fn=validation_fn,
        model_overrides=overrides,
        vocabulary=data.vocabulary,
        extra_config={
            "data": data.config,
            "max_length": data.max_length,
            "splits": dataclasses.asdict(splits),
            "recipe": dataclasses.asdict(recipe),
            "demo_label": entry.label,
        },
        epochs=entry.epochs,
        batch_size=batch_size,
        # Given explicitly: a sharded pipeline's length is unknown to tf.data.
        steps_per_epoch=steps_per_epoch,
        seed=trial.seed,
        learning_rate=recipe.learning_rate,
        lr_schedule=recipe.lr_schedule,
        warmup_steps=recipe.warmup_steps(steps_per_epoch, entry.epochs),
        checkpoint_every=0,
        keep_checkpoints=1,
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start

    y_true, probabilities = predict(result.model, data, data.split("test", splits.test), output=primary_output(entry))
    test = metrics_lib.classification_report(y_true, probabilities.argmax(axis=-1), len(data.class_names))
    return {
        "config": entry.config,
        "model": entry.model,
        "label": entry.label,
        "role": entry.role,
        "recipe": entry.recipe,
        "epochs": entry.epochs,
        "seed": trial.seed,
        "batch_size": batch_size,
        "overrides": to_json(overrides),
        "parameters": int(result.model.count_params()),
        "train_seconds": train_seconds,
        "examples_per_second": result.examples_per_second,
        "history": [_history_row(row, primary_output(entry)) for row in result.history],
        "test": test,
        "run_dir": run_dir,
    }


def _history_row(row: Mapping[str, float], output: str | None) -> dict[str, float]:
    """One epoch's metrics under common names (a multi-output model's primary head)."""
    prefix = f"{output}_" if output else ""
    names = {"loss": "loss", "accuracy": f"{prefix}accuracy", "val_loss": "val_loss",
             "val_accuracy": f"val_{prefix}accuracy", "learning_rate": "learning_rate"}
    return {name: float(row[key]) for name, key in names.items() if key in row}


def predict(model, data: DataContext, split: str, *, output: str | None = None, batch_size: int = 500):
    """Runs a model over a split.

    Args:
        model: a trained model taking this config's features.
        data: the config's `DataContext`.
        split: a split or slice, e.g. "test".
        output: for a model with several outputs, which one to return.
        batch_size: examples per forward pass.

    Returns:
        (labels int64 [N], probabilities float32 [N, classes]).

    Raises:
        ValueError: if a multi-output model gets no valid `output`.
    """
    input_names = [tensor.name for tensor in model.inputs]
    labels, probabilities = [], []
    for features, label in data.dataset(split, batch_size=batch_size):
        outputs = model({name: features[name] for name in input_names}, training=False)
        if isinstance(outputs, dict):
            if output not in outputs:
                raise ValueError(f"Model {model.name!r} has outputs {sorted(outputs)}; output={output!r} names none of them.")
            outputs = outputs[output]
        labels.append(label.numpy())
        probabilities.append(np.asarray(outputs))
    return np.concatenate(labels).astype(np.int64), np.concatenate(probabilities)
