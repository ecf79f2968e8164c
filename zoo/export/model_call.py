"""The model call of a serving function: probabilities and labels per head, compiled with XLA.

A model whose image tower holds convolutions is called in parts from
`SPLIT_MIN_BATCH` examples on (see `zoo.export.tower_split`): XLA's
convolutions are slower than TensorFlow's oneDNN kernels on such batches.
Smaller batches run whole under XLA, their small convolutions as patch
products (`zoo.export.small_convolutions`), and a single example runs each
tower as its own XLA call, side by side.

The weights of a model up to `INLINE_WEIGHTS_MAX_BYTES` are compiled into the
call as constants, so that a serving signature passes no variable per call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from zoo.export.small_convolutions import with_small_convolutions_as_products
from zoo.export.spec import ModelSpec
from zoo.export.tower_split import has_convolution, split_towers
from zoo.layers import conv_pool

__all__ = [
    "INLINE_WEIGHTS_MAX_BYTES",
    "SPLIT_MIN_BATCH",
    "compiled_model_outputs",
    "compiled_tower",
    "numeric_outputs",
    "output_names",
    "weight_constants",
    "with_weight_constants",
]


def output_names(spec: ModelSpec) -> dict[str, dict[str, str]]:
    """Signature output names per head.

    The first head's outputs are `probabilities`, `label` and `class_name`;
    the other heads' are prefixed with the head name (`parity_label`).
    """
    names = {}
    for i, head in enumerate(spec.heads):
        prefix = "" if i == 0 else f"{head}_"
        names[head] = {
            "probabilities": f"{prefix}probabilities",
            "label": f"{prefix}label",
            "class_name": f"{prefix}class_name",
        }
    return names


def numeric_outputs(model, spec: ModelSpec, feeds: dict) -> dict[str, tf.Tensor]:
    """Calls the model on `feeds` (by input name) for float32 probabilities and int64 labels per head."""
    inputs = {t.name: feeds[t.name] for t in model.inputs}
    structure = model.input
    if isinstance(structure, dict):
        call_inputs = {k: inputs[v.name] for k, v in structure.items()}
    elif isinstance(structure, list | tuple):
        call_inputs = [inputs[t.name] for t in structure]
    else:
        call_inputs = inputs[structure.name]
    return _head_outputs(model(call_inputs, training=False), spec)


def _outputs_of_any_batch(model, spec: ModelSpec, feeds: dict) -> dict[str, tf.Tensor]:
    """`numeric_outputs` that also takes an empty batch: the model runs on one row of zeros, cut off after.

    Some layers cannot compile for zero rows (the spectrogram's reflection
    padding); a branch on the batch size around the model would pass every
    weight through switch ops on each call instead. Under XLA the batch size
    is known when compiling, so at any other size the padding and the cut
    compile to nothing.
    """
    batch = tf.shape(next(iter(feeds.values())))[0]
    missing = tf.maximum(1 - batch, 0)
    padded = {k: tf.pad(v, [[0, missing]] + [[0, 0]] * (v.shape.rank - 1)) for k, v in feeds.items()}
    return {k: v[:batch] for k, v in numeric_outputs(model, spec, padded).items()}


def _head_outputs(result, spec: ModelSpec) -> dict[str, tf.Tensor]:
    """The model's result as float32 probabilities and int64 labels per head."""
    if isinstance(result, dict):
        per_head = [result[h] for h in spec.heads]
    elif isinstance(result, list | tuple):
        per_head = list(result)
    else:
        per_head = [result]
    names = output_names(spec)
    outputs = {}
    for head, probabilities in zip(spec.heads, per_head, strict=True):
        probabilities = tf.cast(probabilities, tf.float32)
        outputs[names[head]["probabilities"]] = tf.identity(probabilities)
        outputs[names[head]["label"]] = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
    return outputs


# From this many examples a batch of a model with a convolutional image tower
# runs in parts. Seed model, SavedModel `serving_default` on a 2-core CPU,
# median ms of 5 interleaved rounds, whole model under XLA vs in parts:
# batch 1 0.51 vs 0.63, 4 0.84 vs 0.92, 8 0.99 vs 0.98, 16 1.49 vs 1.35,
# 32 2.43 vs 2.00, 128 8.08 vs 6.38. With PackedLSTM's grouped kernel in both:
# 16 1.31 vs 1.26, 32 2.20 vs 1.87.
SPLIT_MIN_BATCH = 16


# Up to this many bytes of weights, a serving signature reads them as constants.
# Each variable a loaded signature captures costs every call: the seed model's
# 15 took a batch-1 call from 0.41-0.42 to 0.46-0.49 ms (SavedModel
# `serving_default`, two runs of 9 interleaved rounds), a trivial signature
# with 17 captured variables took 0.140 ms against 0.101 ms with none. The
# constants are saved once per compiled function (the whole model, and its
# parts when it has them) besides the variables, so large models keep reading
# variables.
INLINE_WEIGHTS_MAX_BYTES = 32 * 2**20


def compiled_model_outputs(
    model, spec: ModelSpec, *, convolutions_as_products: bool = True
) -> Callable[[dict], dict]:
    """The model's numeric outputs (probabilities, labels), compiled with XLA.

    String work (tokenizing, class names) cannot be compiled and stays outside;
    XLA compiles once per input shape, so the first call at a new batch size
    pays the compilation. When the model has a convolutional tower
    (`zoo.export.tower_split`), batches of `SPLIT_MIN_BATCH` examples or more
    run that tower on TensorFlow's own kernels (oneDNN on a CPU), the other
    towers and the head each under XLA; smaller batches compile the whole
    model, with its small convolutions as patch products
    (`zoo.export.small_convolutions`) unless `convolutions_as_products` is False;
    a single example then runs each tower compiled on its own, side by side.

    A model with at most `INLINE_WEIGHTS_MAX_BYTES` of weights is traced with
    their values as constants, taken now: what the functions compute no longer
    follows later changes to the model's variables. Share one result between
    the signatures of an export, so that each function and its constants are
    saved once.
    """
    weights = weight_constants(model)
    products_in = model if convolutions_as_products else None
    whole = _compiled(weights, functools.partial(_outputs_of_any_batch, model, spec), products_in)
    split = split_towers(model)
    if split is None:
        return whole
    towers = {
        tower.input_name: tf.function(
            with_weight_constants(
                weights,
                _flat_call(tower.function) if tower.compiled else _fused_forward(model, _flat_call(tower.function)),
            ),
            jit_compile=tower.compiled,
        )
        for tower in split.towers
    }
    # A single example runs each tower as its own compiled call (convolutions as
    # products), so that TensorFlow runs the towers side by side and the image tower
    # starts while the text is still being tokenized. Seed model, SavedModel
    # `serving_default` at batch 1, 7 interleaved rounds: 0.83-0.92x the whole model
    # in one call in four runs (0.400 against 0.428 ms in one); at batch 2 the same
    # split was slower (1.01-1.15x), so it is for one example only.
    one_example = (
        {
            tower.input_name: towers[tower.input_name]
            if tower.compiled
            else _compiled(weights, _flat_call(tower.function), model)
            for tower in split.towers
        }
        if convolutions_as_products
        else {}
    )

    def head_outputs(tensors):
        return _head_outputs(split.head(tensors), spec)

    head = tf.function(with_weight_constants(weights, head_outputs), jit_compile=True)

    def split_call(feeds, parts):
        tower_outputs = {name: tower(feeds[name]) for name, tower in parts.items()}
        return head(
            [
                feeds[name] if index is None else tower_outputs[name][index]
                for name, index in split.head_sources
            ]
        )

    def outputs(feeds):
        batch = tf.shape(next(iter(feeds.values())))[0]

        def large_or_small():
            return tf.cond(batch >= SPLIT_MIN_BATCH, lambda: split_call(feeds, towers), lambda: whole(feeds))

        if not one_example:
            return large_or_small()
        return tf.cond(tf.equal(batch, 1), lambda: split_call(feeds, one_example), large_or_small)

    return outputs


# A convolution over few channels and its pooling run as one XLA kernel
# (`zoo.layers.conv_pool`) in the parts that run on TensorFlow's own kernels.
# Seed model, SavedModel `serving_default`, median ms of 7-9 interleaved rounds
# on a 2-core AMD EPYC without AVX-512 (TensorFlow's oneDNN kernels off):
# batch 16 7.57 against 8.84, 32 11.0 against 13.9, 128 24.3-25.5 against
# 29.3-29.6; batch 1 unchanged. Under XLA (below 16 rows) the patch products
# stay faster: batch 8 9.97 against 6.36 ms fused.
def _fused_forward(layer, function: Callable) -> Callable:
    """`function`, tracing with `layer`'s few-channel convolutions and their pooling fused, forward only."""
    return conv_pool.with_fused_convolution_pools(layer, function, gradients=False)


def _compiled(weights: dict[int, np.ndarray] | None, function: Callable, products_in=None) -> Callable:
    """`function` compiled with XLA, `weights` compiled in, and the small convolutions of
    `products_in` (a layer; None for none) as patch products below `SPLIT_MIN_BATCH` rows."""
    if products_in is not None:
        function = with_small_convolutions_as_products(products_in, SPLIT_MIN_BATCH, function)
    return tf.function(with_weight_constants(weights, function), jit_compile=True)


def weight_constants(model) -> dict[int, np.ndarray] | None:
    """The values to compile into a model's serving functions (see `with_weight_constants`).

    Args:
        model: a Keras model.

    Returns:
        Its weights' values by variable id, taken now, or None when they
        exceed `INLINE_WEIGHTS_MAX_BYTES` (the functions then read the variables).
    """
    size = sum(math.prod(w.shape) * tf.as_dtype(w.dtype).size for w in model.weights)
    if size > INLINE_WEIGHTS_MAX_BYTES:
        return None
    return {id(w): np.asarray(w.numpy()) for w in model.weights}


class _ConstantWeights(keras.StatelessScope):
    """Keras reads each given variable as a constant of its value, made in the graph that reads it.

    Made on first read, so that a function holds only the weights it uses.
    """

    def __init__(self, values: dict[int, np.ndarray]):
        super().__init__(initialize_variables=False)
        self._values = values
        self._made = {}

    def get_current_value(self, variable):
        value = self._values.get(id(variable))
        if value is None:
            return super().get_current_value(variable)
        key = (id(variable), tf.compat.v1.get_default_graph())
        if key not in self._made:
            self._made[key] = tf.constant(value)
        return self._made[key]


def with_weight_constants(weights: dict[int, np.ndarray] | None, function: Callable) -> Callable:
    """`function`, tracing with `weights` (from `weight_constants`) as constants; unchanged when None."""
    if weights is None:
        return function

    @functools.wraps(function)
    def call(*args, **kwargs):
        with _ConstantWeights(weights):
            return function(*args, **kwargs)

    return call


def compiled_tower(function: Callable, weights: dict[int, np.ndarray] | None, tower=None) -> Callable:
    """A serving function's call of one part of a model on one input tensor, compiled with XLA.

    A part with convolutions runs on TensorFlow's own kernels (oneDNN on a
    CPU) from `SPLIT_MIN_BATCH` rows on, where they are faster than XLA's, and
    below that computes its small ones as patch products
    (`zoo.export.small_convolutions`), as in `compiled_model_outputs`.

    Args:
        function: one tensor -> a tensor or a structure of tensors.
        weights: from `weight_constants`: compiled in as constants, or None
            to read the variables.
        tower: the Keras layer or model that `function` runs, when it may
            hold convolutions; None for a part without any.

    Returns:
        A callable of the same signature, for use inside a `tf.function`.
    """
    if tower is None or not has_convolution(tower):
        return _compiled(weights, function)
    compiled = _compiled(weights, function, tower)
    plain = tf.function(with_weight_constants(weights, _fused_forward(tower, function)))

    def call(tensor):
        return tf.cond(tf.shape(tensor)[0] >= SPLIT_MIN_BATCH, lambda: plain(tensor), lambda: compiled(tensor))

    return call


def _flat_call(function):
    def call(tensor):
        return keras.tree.flatten(function([tensor]))

    return call
