"""The captioner's calls in graph decoding, cut so that each step does as little as it can.

A decoding step needs the word probabilities at one position. The Keras
models of `zoo.models.decoding.step_models`, which the Python decoder runs
too, take out the work that is not new there: the image tower runs once per
image, the LSTMs advance one token (a caption of L positions runs L LSTM
steps instead of L (L + 1) / 2), and the attention and vocabulary projection
run at that position only. A model built otherwise decodes whole at every
step. This module imports TensorFlow; `zoo.export.captioner` uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from zoo.core import keys
from zoo.models.decoding import step_models

__all__ = ["DecodingParts", "decoding_parts", "top_k_by_reductions"]


class DecodingParts(NamedTuple):
    """The model's calls in decoding.

    Attributes:
        encode: images -> the list of tensors the steps read of them.
        start: rows -> the decoder state before the first position (a list
            of [rows, ...] tensors, possibly empty).
        step: (the encoded list, repeated per beam; the state; token ids
            [rows, length]; a position) -> (word probabilities there
            [rows, vocab], the state after it). The beam search reorders the
            state's rows with the beams.
        image_tower: whether `encode` runs the image tower (else it passes the images on).
    """

    encode: Callable
    start: Callable
    step: Callable
    image_tower: bool


def decoding_parts(model) -> DecodingParts:
    """The cut of `model` (a captioner) that decodes with the least work; see the module docstring."""
    models = step_models(model)
    if models is None:
        def whole(encoded, state, ids, position):
            return model({keys.IMAGE: encoded[0], keys.TOKEN_IDS: ids}, training=False)[:, position], state

        return DecodingParts(lambda images: [images], lambda rows: [], whole, image_tower=False)

    def encode(images):
        return [models.encode(images, training=False)]

    if models.state:
        def start(rows):
            return [tf.zeros([rows, units], dtype) for units, dtype in models.state]

        def stepped(encoded, state, ids, position):
            probabilities, *carried = models.step([encoded[0], ids[:, position], *state], training=False)
            return probabilities, carried

        return DecodingParts(encode, start, stepped, image_tower=True)

    def prefix(encoded, state, ids, position):
        at = tf.one_hot(tf.fill(tf.shape(ids)[:1], position), ids.shape[1])
        return models.step([encoded[0], ids, at], training=False), state

    return DecodingParts(encode, lambda rows: [], prefix, image_tower=True)


def top_k_by_reductions(values: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`tf.math.top_k(values, k, sorted=True)` for rank 2, lower index first among equals, by k pairs of reductions.

    XLA's CPU TopK sorts each row whole: 6-8 ms per decoding step of 64
    images over 1,000 words, most of the compiled captioner's time.

    Args:
        values: [rows, n] floats without NaN.
        k: int32 scalar in [1, n].

    Returns:
        (values [rows, k], int32 indices [rows, k]), as `tf.math.top_k`.
    """
    count = tf.shape(values)[1]
    position = tf.range(count)[None, :]
    lowest = tf.constant(-float("inf"), values.dtype)

    def pick(i, taken, best_values, best_indices):
        best = tf.reduce_max(tf.where(taken, lowest, values), axis=1, keepdims=True)
        # Among the untaken entries equal to the best (-inf included), the lowest index.
        index = tf.reduce_min(tf.where(tf.logical_and(~taken, values == best), position, count), axis=1)
        taken = tf.logical_or(taken, position == index[:, None])
        return i + 1, taken, best_values.write(i, best[:, 0]), best_indices.write(i, index)

    found = (tf.TensorArray(values.dtype, size=k), tf.TensorArray(tf.int32, size=k))
    _, _, best_values, best_indices = tf.while_loop(
        lambda i, *_: i < k, pick, (0, tf.zeros_like(values, tf.bool), *found)
    )
    return tf.transpose(best_values.stack()), tf.transpose(best_indices.stack())
