"""The model side of the loop: build and compile, and the distributed train and validation calls.

Each output is compiled with the loss its head needs, read from the layer
that produces it (`zoo.models.common.output_layer`): softmax →
classification (sparse categorical cross-entropy, accuracy), sigmoid →
multi-label (binary cross-entropy, binary accuracy), linear → regression
(mean squared error, mean absolute error); a dict or list of outputs gets
one of each per output. A dual encoder (an output from a `ContrastiveHead`)
gets its `ContrastiveLoss` and steps that gather the global batch for it
(`zoo.training.contrastive`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from zoo.core import keys
from zoo.layers import conv_pool
from zoo.training import contrastive
from zoo.training.config import TrainConfig, make_optimizer
from zoo.training.finetune import make_fine_tune
from zoo.training.gradient_registry import StepGraphs

__all__ = ["seed_everything", "output_tasks", "build_model", "make_train_function", "make_validation_function",
           "model_inputs", "strip_spec", "check_element_spec", "read_metrics", "current_learning_rate"]

_TASK_OF_ACTIVATION = {"softmax": "classification", "sigmoid": "multilabel", "linear": "regression"}
_METRICS = {"classification": "accuracy", "multilabel": "binary_accuracy", "regression": "mae"}


def output_tasks(model):
    """The task of each of a model's outputs, in the structure of `model.output`.

    Args:
        model: a built functional `keras.Model`.

    Returns:
        `"classification"`, `"multilabel"` or `"regression"` per output (a
        str, or a dict / list of them, like `model.output`).

    Raises:
        ValueError: an output whose last layer has no softmax, sigmoid or
            linear activation (the loss cannot be told).
    """
    return tf.nest.map_structure(lambda tensor: _task_of(model, tensor), model.output)


def _task_of(model, tensor) -> str:
    layer = tensor._keras_history.operation
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name not in _TASK_OF_ACTIVATION:
        raise ValueError(
            f"Cannot tell the task of model {model.name!r}'s output from layer {layer.name!r} (activation "
            f"{name!r}); end each output with a softmax (classification), sigmoid (multi-label) or linear "
            "(regression) activation."
        )
    return _TASK_OF_ACTIVATION[name]


def _compile_arguments(model):
    import keras

    from zoo.models import loss_for

    if contrastive.is_contrastive(model):
        return contrastive.contrastive_loss(model), None
    classes = {
        "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
        "binary_crossentropy": keras.losses.BinaryCrossentropy,
        "mean_squared_error": keras.losses.MeanSquaredError,
    }
    tasks = output_tasks(model)
    losses = tf.nest.map_structure(lambda task: classes[loss_for(task)](), tasks)
    metrics = tf.nest.map_structure(lambda task: [_METRICS[task]], tasks)
    return losses, metrics


def build_model(model_spec, overrides, element_spec, total_steps: int, *, config: TrainConfig, strategy, kind: str):
    """Builds (or takes), compiles and initialises the model inside the strategy's scope.

    Returns:
        `(model, hyperparameters, fine_tune)`; hyperparameters is None unless
        the model is a registered name; fine_tune is the run's
        `zoo.training.finetune.FineTune`, or None when nothing is frozen.

    Raises:
        ValueError: a bad model spec or overrides, jit with several replicas,
            or a tower to freeze that the model does not have.
    """
    with _precision_policy(config.mixed_precision), strategy.scope():
        model, hyperparameters = _make_model(model_spec, overrides, config, kind)
        if config.jit and strategy.num_replicas_in_sync > 1 and kind != "tpu":
            raise ValueError(
                f"jit=True needs a single replica (the {kind!r} strategy has "
                f"{strategy.num_replicas_in_sync}): XLA cannot compile the cross-replica "
                "gradient sum. Drop --jit or train on one device."
            )
        # Tower names are checked here, before any step; the optimizer gets
        # slots for what will ever train (zoo.training.finetune).
        fine_tune = make_fine_tune(model, config)
        if fine_tune is not None:
            fine_tune.before_optimizer_build()
        loss, metrics = _compile_arguments(model)
        model.compile(optimizer=make_optimizer(config, total_steps), loss=loss, metrics=metrics,
                      jit_compile=config.jit)
        _build_training_state(model, strip_spec(element_spec, {t.name for t in model.inputs}))
        if fine_tune is not None:
            fine_tune.install(model.optimizer)
    return model, hyperparameters, fine_tune


# Longest text for which recurrent layers are unrolled on a CPU: beyond it the
# unrolled graph grows faster than the loop's overhead shrinks.
UNROLL_MAX_LENGTH = 64


def has_recurrent_layers(model_name: str) -> bool:
    """Whether a registered model has recurrent layers: its builder takes `unroll`."""
    from zoo.registry import get_entry

    return "unroll" in get_entry(model_name).defaults


def fast_recurrence(model_name: str, overrides: dict) -> dict:
    """Unrolls a registered model's recurrent layers when that is the fast choice.

    On a CPU, an unrolled recurrent layer over a short fixed length runs
    faster than Keras' while loop and computes the same thing, padding mask
    included: before `PackedLSTM` it trained the seed model 17% faster (1,984
    vs 1,695 examples/s, medians of 3 interleaved runs). An LSTM's training
    step now runs `PackedLSTM`'s kernel either way, and so does inference
    under XLA; evaluation and other inference keep the unrolled graph (the
    seed model's forward in a graph, separate
    runs: 7.8 vs 9.4 ms at batch 128, 0.65 vs 1.33 ms at batch 1), and so do
    GRU layers. On a GPU it stays rolled: only a rolled LSTM runs
    on cuDNN. The user's own `unroll` always wins.

    Args:
        model_name: a registered model name.
        overrides: the user's hyperparameter overrides.

    Returns:
        The overrides, with `unroll=True` added where it helps.
    """
    from zoo.registry import resolve_hyperparameters

    if not has_recurrent_layers(model_name) or overrides.get("unroll") is not None:
        return overrides
    if tf.config.list_physical_devices("GPU"):
        return overrides
    length = resolve_hyperparameters(model_name, **overrides).get("max_length")
    if length is None or length > UNROLL_MAX_LENGTH:
        return overrides
    return {**overrides, "unroll": True}


def _make_model(model_spec, overrides, config: TrainConfig, kind: str):
    import keras

    if isinstance(model_spec, str):
        from zoo.registry import build, resolve_hyperparameters

        overrides = fast_recurrence(model_spec, overrides)
        return build(model_spec, **overrides), resolve_hyperparameters(model_spec, **overrides)
    if overrides:
        what = "a model object" if isinstance(model_spec, keras.Model) else "a function"
        raise ValueError(f"model_overrides={overrides!r} need a registered model name, not {what}.")
    if isinstance(model_spec, keras.Model):
        if kind != "default" or config.mixed_precision:
            raise ValueError(
                f"A ready-made keras.Model works only with the default strategy and full precision "
                f"(got strategy {kind!r}, mixed_precision={config.mixed_precision}); pass a "
                "function that builds the model so it is built inside the strategy's scope."
            )
        return model_spec, None
    if callable(model_spec):
        model = model_spec()
        if not isinstance(model, keras.Model):
            raise ValueError(f"The model function returned {type(model).__name__}, expected a keras.Model.")
        return model, None
    raise ValueError(f"model={model_spec!r}: expected a registered name, a keras.Model or a function returning one.")


def make_train_function(
    strategy, model, iterator, input_names, *, track_ids: bool, jit: bool, step_graphs: StepGraphs | None = None
) -> Callable:
    """Returns `train_exec(count)`: runs `count` steps on batches from `iterator`, returns the example ids.

    Each local replica gets its own batch from the one checkpointable
    iterator (`experimental_distribute_values_from_function`). The graphs the
    steps are traced in are noted in `step_graphs`, so the run can free them.
    """
    input_names = set(input_names)
    replica_step = conv_pool.with_fused_convolution_pools(
        model, contrastive.make_train_step(model) if contrastive.is_contrastive(model) else model.train_step
    )
    if jit:
        replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

    def next_batch():
        ids = []

        def value_fn(_):
            batch, example_ids = model_inputs(next(iterator), input_names)
            ids.append(example_ids)
            return batch

        batch = strategy.experimental_distribute_values_from_function(value_fn)
        return batch, (tf.concat(ids, axis=0) if track_ids else None)

    def note_graph():
        if step_graphs is not None:
            step_graphs.note_current_graph()

    @tf.function
    def one_step():
        note_graph()
        batch, ids = next_batch()
        strategy.run(replica_step, args=(batch,))
        return ids if track_ids else tf.zeros([0], tf.int64)

    @tf.function
    def several_steps(count):
        note_graph()
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


def make_validation_function(strategy, model) -> Callable:
    """Returns `val_exec(distributed_dataset)`: one pass of `test_step` over it."""

    replica_step = conv_pool.with_fused_convolution_pools(
        model, contrastive.make_test_step(model) if contrastive.is_contrastive(model) else model.test_step
    )

    @tf.function
    def val_exec(distributed_dataset):
        for batch in distributed_dataset:
            strategy.run(replica_step, args=(batch,))

    return val_exec


def check_element_spec(spec, what: str) -> None:
    """Raises ValueError unless a dataset yields `(features dict, label[, weight])`."""
    if not isinstance(spec, tuple) or len(spec) not in (2, 3) or not isinstance(spec[0], dict):
        raise ValueError(
            f"The {what} dataset must yield (features, label) or (features, label, sample_weight) with "
            f"features a dict keyed by input name; its elements are {spec}."
        )


def strip_spec(spec, input_names: set[str]):
    """The element spec reduced to the model's inputs; ValueError if one is missing."""
    features = {k: v for k, v in spec[0].items() if k in input_names}
    missing = sorted(input_names - set(spec[0]))
    if missing:
        raise ValueError(
            f"The training batches lack the model input(s) {missing}; they have {sorted(spec[0])}."
        )
    return (features, *spec[1:])


def model_inputs(element, input_names: set[str]):
    """Splits a dataset element into the model's (features, label[, weight]) and the example ids."""
    features, *rest = element
    ids = features.get(keys.EXAMPLE_ID)
    kept = {k: v for k, v in features.items() if k in input_names}
    return (kept, *rest), ids


def read_metrics(model) -> dict[str, float]:
    """The model's current metric results as Python floats."""
    return {key: float(np.asarray(value)) for key, value in model.get_metrics_result().items()}


def current_learning_rate(model) -> float:
    """The optimizer's learning rate now (after any schedule)."""
    return float(np.asarray(model.optimizer.learning_rate))


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


def seed_everything(config: TrainConfig) -> None:
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
