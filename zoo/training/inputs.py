"""The data side of the loop: data configs, per-worker datasets and their lengths."""

from __future__ import annotations

import importlib.util
import logging
import os
import re

import tensorflow as tf

from zoo.core import keys
from zoo.training.overrides import data_overrides
from zoo.training.steps import check_element_spec, model_inputs

__all__ = ["check_data_request", "data_config", "count_batches", "train_dataset", "validation_dataset", "agree_on_min"]

log = logging.getLogger("zoo.training")

# A split name or a TFDS slice of one with integer or percent bounds.
_SPLIT_RE = re.compile(r"^(train|validation|test)(\[(-?\d+%?)?:(-?\d+%?)?\])?$")


def check_data_request(data: str, splits) -> None:
    """Checks a data config name and split names without opening any data.

    Raises:
        ValueError: an unknown config or a malformed split, naming it and what is allowed.
    """
    if importlib.util.find_spec("zoo.data.pipeline") is None:
        raise ValueError(f"data={data!r} needs zoo.data.pipeline, which this installation lacks; pass dataset_fn instead.")
    from zoo.data import pipeline

    if data not in pipeline.CONFIGS:
        raise ValueError(f"Unknown data config {data!r}; expected one of {list(pipeline.CONFIGS)}.")
    for split in splits:
        if split is not None and not (isinstance(split, str) and _SPLIT_RE.match(split)):
            raise ValueError(
                f"Unknown split {split!r}; expected one of {list(pipeline.SPLITS)} or a slice of one "
                "such as 'train[:2000]' or 'validation[:10%]'."
            )


def data_config(data, model_spec, overrides, data_dir, source_dir, max_length, splits, config):
    """Datasets, vocabulary and model overrides for a `zoo.data.pipeline` config.

    Returns:
        `(dataset_fn, validation_fn or None, vocabulary or None, overrides)`.
    """
    from zoo.data import pipeline
    from zoo.data.text import Tokenizer

    check_data_request(data, splits)
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    source_dir = os.fspath(source_dir) if source_dir is not None else None
    vocabulary = tokenizer = None
    text_preset = backbone_text_preset(model_spec, overrides) if data in pipeline.TEXT_CONFIGS else None
    if text_preset is not None:
        from zoo.data.hub_text import BackboneTokenizer

        tokenizer = BackboneTokenizer(text_preset, max_length)
    elif data in pipeline.TEXT_CONFIGS:
        vocabulary = pipeline.fit_vocabulary(data, data_dir=data_dir, source_dir=source_dir)
        tokenizer = Tokenizer(vocabulary, max_length)
    if isinstance(model_spec, str):
        overrides = data_overrides(
            model_spec, num_classes=len(pipeline.class_names(data)), max_length=max_length,
            vocab_size=len(vocabulary) if vocabulary is not None else None, overrides=overrides,
        )
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
                batches = count_batches(pipeline, data, split, input_context, options)
                dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
            return dataset

        return dataset_fn

    validation = make(validation_split, False, False) if validation_split else None
    return make(train_split, True, True), validation, vocabulary, overrides


def backbone_text_preset(model_spec, overrides):
    """The KerasHub preset whose tokenizer encodes text for a model with a KerasHub text backbone.

    Returns:
        A local preset directory or a published preset name; None for the
        zoo's other models (they use the data's fitted vocabulary).

    Raises:
        ValueError: the model has a randomly initialised text backbone and so
            no tokenizer; the message says how to give it one.
    """
    if not isinstance(model_spec, str):
        return None
    from zoo.models.pretrained import resolve_pretrained
    from zoo.registry import get_entry, resolve_hyperparameters

    if "text_backbone" not in get_entry(model_spec).defaults:
        return None
    hyperparameters = resolve_hyperparameters(model_spec, **overrides)
    text_source, _ = resolve_pretrained(hyperparameters)
    if text_source is True:
        return hyperparameters["text_backbone"]
    if isinstance(text_source, str) and os.path.exists(os.path.join(text_source, "tokenizer.json")):
        return text_source
    raise ValueError(
        f"Model {model_spec!r} reads text through its KerasHub backbone's tokenizer, but its text backbone "
        f"({'the preset ' + repr(text_source) + ' without a tokenizer' if text_source else 'randomly initialised'}) "
        "has none: pass text_pretrained=DIR (or pretrained=DIR) naming a preset saved with its tokenizer "
        "(zoo.models.pretrained.save_tower_presets(model, DIR, tokenizer=...)), or pretrained=True."
    )


def count_batches(pipeline, data, split, input_context, options) -> int:
    """Batches in one pass of this input pipeline's shard of a data config's split."""
    per_replica = input_context.get_per_replica_batch_size(options["batch_size"])
    if input_context.num_input_pipelines == 1:
        count = pipeline.num_examples(data, split, data_dir=options["data_dir"], source_dir=options["source_dir"])
        return -(-count // per_replica)
    # A shard's size depends on how the pipeline assigns examples; counting its
    # raw batches once is exact whatever that rule is.
    raw = pipeline.make_dataset(data, split, mode="raw", shuffle=False, **options)
    return int(raw.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def _input_context(run) -> tf.distribute.InputContext:
    return tf.distribute.InputContext(
        num_input_pipelines=run.cluster.num_workers,
        input_pipeline_id=run.cluster.worker_index,
        num_replicas_in_sync=run.strategy.num_replicas_in_sync,
    )


def _call_dataset_fn(run, dataset_fn, what: str) -> tf.data.Dataset:
    if isinstance(dataset_fn, tf.data.Dataset):
        if run.cluster.num_workers > 1:
            raise ValueError(
                f"The {what} data is a tf.data.Dataset, but this run has {run.cluster.num_workers} "
                "workers: pass a function input_context -> Dataset that reads this worker's shard."
            )
        dataset = dataset_fn
    elif callable(dataset_fn):
        dataset = dataset_fn(_input_context(run))
    else:
        raise ValueError(f"The {what} data must be a tf.data.Dataset or a function returning one; got {dataset_fn!r}.")
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"The {what} dataset function returned {type(dataset).__name__}, expected a tf.data.Dataset.")
    check_element_spec(dataset.element_spec, what)
    return dataset


def train_dataset(run, dataset_fn):
    """This worker's repeated training dataset and the steps per epoch all workers agree on.

    Raises:
        ValueError: bad elements, no `example_id` when ids are tracked, too
            few batches, or an unknown length without `steps_per_epoch`.
    """
    config = run.config
    dataset = _call_dataset_fn(run, dataset_fn, "training")
    if run.on_batch_ids is not None and keys.EXAMPLE_ID not in dataset.element_spec[0]:
        raise ValueError(f"on_batch_ids needs an {keys.EXAMPLE_ID!r} feature in the training batches.")
    cardinality = int(dataset.cardinality())
    if config.steps_per_epoch is not None:
        steps = config.steps_per_epoch
    elif cardinality >= 0:
        steps = cardinality // run.local_replicas
        if steps == 0:
            raise ValueError(
                f"The training data has {cardinality} batch(es) per input pipeline, fewer than the "
                f"{run.local_replicas} replicas each step needs; use more data or a smaller batch size."
            )
        if cardinality % run.local_replicas:
            log.warning(
                "%d training batches do not split over %d replicas; the last %d batch(es) of each "
                "pass are skipped.", cardinality, run.local_replicas, cardinality % run.local_replicas,
            )
            dataset = dataset.take(steps * run.local_replicas)
    else:
        raise ValueError(
            "The training dataset's length is unknown or infinite "
            f"(cardinality {cardinality}); pass steps_per_epoch."
        )
    steps = agree_on_min(run, steps)
    if cardinality != tf.data.INFINITE_CARDINALITY:
        dataset = dataset.repeat()
    return dataset, steps


def validation_dataset(run, validation_fn, input_names):
    """The distributed validation dataset (model inputs only), or None without validation data."""
    if validation_fn is None:
        return None
    steps = run.config.validation_steps
    input_names = set(input_names)
    if isinstance(validation_fn, tf.data.Dataset) and run.cluster.num_workers > 1:
        raise ValueError("The validation data is a tf.data.Dataset, but this run has several workers: pass a function.")

    def per_worker(input_context):
        dataset = validation_fn if isinstance(validation_fn, tf.data.Dataset) else validation_fn(input_context)
        check_element_spec(dataset.element_spec, "validation")
        if steps is not None:
            dataset = dataset.take(steps * run.local_replicas)
        return dataset.map(lambda *element: model_inputs(element, input_names)[0])

    return run.strategy.distribute_datasets_from_function(per_worker)


def agree_on_min(run, value: int) -> int:
    """The smallest `value` over all workers (itself with one worker)."""
    if run.cluster.num_workers == 1:
        return value
    per_replica = run.strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([value], tf.int64)
    )
    agreed = int(tf.reduce_min(run.strategy.gather(per_replica, axis=0)))
    if agreed != value:
        log.warning("Workers have different numbers of batches; every worker uses %d steps per epoch.", agreed)
    return agreed
