"""The captioner's calls in graph decoding, cut so that each step does as little as it can.

A decoding step needs the word probabilities at one position. Calling the
whole model there repeats work, and `decoding_parts` takes out what it can
prove unchanged:

- the image tower runs once per image, not once per position and beam, when
  the model cuts into towers (`zoo.export.tower_split`);
- the head runs at the decoded position only, when each of its layers treats
  positions one by one (cross-attention to the image included);
- the text tower advances its LSTM state by one token, when it is an
  embedding followed by forward LSTMs that return sequences: the state at a
  position is the same whether computed over the whole prefix or carried from
  the step before, so a caption of L positions runs L LSTM steps instead of
  L (L + 1) / 2.

A model cut otherwise decodes with the parts it allows, or whole. This module
imports TensorFlow; `zoo.export.captioner` uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import keras
import tensorflow as tf

from zoo.core import keys
from zoo.export.tower_split import split_towers
from zoo.layers import CrossModalAttention
from zoo.models.decoding import recurrent_chain

__all__ = ["DecodingParts", "decoding_parts", "top_k_by_reductions"]

# Layers whose output at a text position depends on that position's input only
# (cross-attention to the image included), so a head made of them can run on one position.
_POSITION_WISE = (
    keras.layers.InputLayer,
    CrossModalAttention,
    keras.layers.Dense,
    keras.layers.Activation,
    keras.layers.LayerNormalization,
    keras.layers.Dropout,
)


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
    split = split_towers(model)
    if split is None or {name for name, _ in split.head_sources} - {keys.IMAGE, keys.TOKEN_IDS}:
        def whole(encoded, state, ids, position):
            return model({keys.IMAGE: encoded[0], keys.TOKEN_IDS: ids}, training=False)[:, position], state

        return DecodingParts(lambda images: [images], lambda rows: [], whole, image_tower=False)
    towers = {tower.input_name: tower.function for tower in split.towers}
    reads_pixels = (keys.IMAGE, None) in split.head_sources

    def encode(images):
        tower = towers.get(keys.IMAGE)
        return [*(keras.tree.flatten(tower([images])) if tower else []), *([images] if reads_pixels else [])]

    def head(encoded, text, ids, position, one_position):
        inputs = [
            (encoded[-1] if index is None else encoded[index]) if name == keys.IMAGE
            else (ids if index is None else text[index])
            for name, index in split.head_sources
        ]
        return split.head(inputs)[:, 0 if one_position else position]

    one_position = all(isinstance(layer, _POSITION_WISE) for layer in split.head.operations)
    text_tower = towers.get(keys.TOKEN_IDS)
    chain = None
    if one_position and text_tower is not None and len(text_tower.outputs) == 1:
        chain = recurrent_chain(text_tower.outputs[0], model.input[keys.TOKEN_IDS])
    if chain is not None:
        embedding, lstms = chain

        def start(rows):
            return [tf.zeros([rows, lstm.units], lstm.compute_dtype) for lstm in lstms for _ in range(2)]

        def stepped(encoded, state, ids, position):
            # A fresh tensor, without the padding mask the embedding attaches: a live
            # beam's token is never padding, and the cells take no mask.
            x, carried = tf.identity(embedding(ids[:, position])), []
            for i, lstm in enumerate(lstms):
                x, (h, c) = lstm.cell(x, state[2 * i : 2 * i + 2], training=False)
                carried += [h, c]
            return head(encoded, [_unknown_length(x[:, None])], ids, position, True), carried

        return DecodingParts(encode, start, stepped, image_tower=keys.IMAGE in towers)

    def prefix(encoded, state, ids, position):
        text = keras.tree.flatten(text_tower([ids])) if text_tower else []
        if one_position:
            text = [_unknown_length(tensor[:, position : position + 1]) for tensor in text]
        return head(encoded, text, ids, position, one_position), state

    return DecodingParts(encode, lambda rows: [], prefix, image_tower=keys.IMAGE in towers)


def _unknown_length(tensor):
    """`tensor` with its time axis of unknown static length.

    The head (a `keras.Function`) checks each input's static shape against the
    model's, whose texts have `max_length` positions; an unknown length passes.
    """
    return tf.compat.v1.placeholder_with_default(tensor, [tensor.shape[0], None, *tensor.shape[2:]])


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
