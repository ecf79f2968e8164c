"""SavedModel export of `cnn_lstm_captioner`: raw image in, caption string out.

Signatures (TensorFlow alone loads them; the image is checked in the graph as
in `zoo.export.signatures`):

- `generate`: `image` uint8 [batch, H, W, C] and `beam_width` int32 scalar
  (1 = greedy, at most `MAX_BEAM_WIDTH`) → `caption` string [batch] and
  `token_ids` int32 [batch, max_length] (0 after the end);
- `serving_default`: `image` only, greedy.

The decoder is the graph twin of `zoo.models.decoding.decode`: the same
start id, end id (0), log-probability sums in float64 and tie order (lower
beam, then lower word id: `tf.math.top_k` keeps the lower index first), so
it returns the Python decoder's captions.

Decoding is compiled with XLA (`xla=True`, the default): the image tower runs
once per image, then each position runs the text tower and, where the head
treats positions one by one, the head at that position only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import NamedTuple

import keras
import tensorflow as tf

from zoo.core import keys
from zoo.export import metadata as metadata_lib
from zoo.export.model_call import compiled_tower, weight_constants, with_weight_constants
from zoo.export.signatures import Check, check_image, guarded
from zoo.export.spec import ModelSpec
from zoo.export.target import export_directory
from zoo.export.tower_split import split_towers
from zoo.layers import CrossModalAttention

__all__ = ["export_captioner", "beam_decode", "MAX_BEAM_WIDTH", "CAPTIONER_SIGNATURES"]

MAX_BEAM_WIDTH = 16
CAPTIONER_SIGNATURES = ("serving_default", "generate")


def _select(tensor, beam):
    return tf.gather(tensor, beam, batch_dims=1)


def beam_decode(model, images: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Beam search in the graph; int32 [batch, max_length] ids of the best caption (0 after its end).

    Args:
        model: a `cnn_lstm_captioner` model.
        images: float32 [batch, H, W, C] in [0, 1].
        width: int32 scalar >= 1.
    """
    parts = _decoding_parts(model)
    return _search(model, parts.probabilities, parts.encode(images), width)


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


class _DecodingParts(NamedTuple):
    """The model's calls in decoding.

    Attributes:
        encode: images -> the list of tensors the steps read of them.
        probabilities: (that list, repeated per beam; token ids [N, length];
            a position) -> the model's word probabilities there [N, vocab].
        image_tower: whether `encode` runs the image tower (else it passes the images on).
    """

    encode: Callable
    probabilities: Callable
    image_tower: bool


def _decoding_parts(model) -> _DecodingParts:
    """The model's calls in decoding, cut where that saves work.

    When the model cuts into towers (`zoo.export.tower_split`), an image goes
    through its tower once per caption rather than once per position and beam;
    when its head treats each position on its own, the head runs on the
    position being decoded only (for cnn_lstm_captioner most of a step's work
    is the vocabulary projection of every position).
    """
    split = split_towers(model)
    if split is None or {name for name, _ in split.head_sources} - {keys.IMAGE, keys.TOKEN_IDS}:
        def whole(encoded, ids, position):
            return model({keys.IMAGE: encoded[0], keys.TOKEN_IDS: ids}, training=False)[:, position]

        return _DecodingParts(lambda images: [images], whole, image_tower=False)
    towers = {tower.input_name: tower.function for tower in split.towers}
    reads_pixels = (keys.IMAGE, None) in split.head_sources

    def encode(images):
        tower = towers.get(keys.IMAGE)
        return [*(keras.tree.flatten(tower([images])) if tower else []), *([images] if reads_pixels else [])]

    one_position = all(isinstance(layer, _POSITION_WISE) for layer in split.head.operations)

    def probabilities(encoded, ids, position):
        text = keras.tree.flatten(towers[keys.TOKEN_IDS]([ids])) if keys.TOKEN_IDS in towers else []
        if one_position:
            text = [_unknown_length(tensor[:, position : position + 1]) for tensor in text]
        inputs = [
            (encoded[-1] if index is None else encoded[index]) if name == keys.IMAGE
            else (ids if index is None else text[index])
            for name, index in split.head_sources
        ]
        return split.head(inputs)[:, 0 if one_position else position]

    return _DecodingParts(encode, probabilities, image_tower=keys.IMAGE in towers)


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


def _search(model, probabilities_of, encoded: list, width: tf.Tensor, top_k=tf.math.top_k) -> tf.Tensor:
    """The beam search of `beam_decode` over images already encoded by `_decoding_parts`."""
    length = model.input[keys.TOKEN_IDS].shape[1]
    vocab = model.output.shape[-1]
    batch = tf.shape(encoded[0])[0]
    repeated = [tf.repeat(tensor, width, axis=0) for tensor in encoded]
    tokens = tf.zeros([batch, width, length], tf.int32)
    start = tf.one_hot(tf.zeros([batch, width], tf.int32), length, on_value=vocab, off_value=0, dtype=tf.int32)
    inputs = start
    first = tf.cast(tf.where(tf.range(width)[None, :] == 0, 0.0, -float("inf")), tf.float64)
    scores = first + tf.zeros([batch, 1], tf.float64)  # one live beam at the start, as in decoding.decode
    finished = tf.zeros([batch, width], tf.bool)
    end_only = tf.where(tf.range(vocab) == 0, 0.0, -float("inf"))[None, None, :]
    for position in range(length):
        probabilities = probabilities_of(repeated, tf.reshape(inputs, [-1, length]), position)
        log_p = tf.math.log(tf.reshape(tf.cast(probabilities, tf.float64), [batch, width, vocab]))
        log_p = tf.where(finished[..., None], tf.cast(end_only, tf.float64), log_p)
        candidates = tf.reshape(scores[..., None] + log_p, [batch, width * vocab])
        scores, best = top_k(candidates, width)
        beam, word = best // vocab, tf.cast(best % vocab, tf.int32)
        at = tf.one_hot(position, length, dtype=tf.int32)
        tokens = _select(tokens, beam) * (1 - at) + word[..., None] * at
        inputs, finished = _select(inputs, beam), tf.logical_or(_select(finished, beam), word == 0)
        if position + 1 < length:
            after = tf.one_hot(position + 1, length, dtype=tf.int32)
            inputs = inputs * (1 - after) + word[..., None] * after
    return tokens[:, 0]


def _signatures(model, vocabulary: list[str], xla: bool):
    image_shape = tuple(model.input[keys.IMAGE].shape[1:])
    length = model.input[keys.TOKEN_IDS].shape[1]
    words = tf.constant(vocabulary)
    image_spec = tf.TensorSpec([None, None, None, None], tf.uint8, name="image")
    parts = _decoding_parts(model)
    encode = parts.encode
    search = functools.partial(_search, model, parts.probabilities)
    if xla:
        # The search compiles once per batch size and beam width (XLA takes the width
        # as a compile-time constant). cnn_lstm_captioner at its defaults, greedy,
        # 5 interleaved rounds, against the whole model called uncompiled at every
        # position: batch 1 2.6 against 26.6 ms, batch 64 31 against 144 ms.
        weights = weight_constants(model)
        if parts.image_tower:
            encode = compiled_tower(encode, weights, convolutional=True)
        search = tf.function(
            with_weight_constants(weights, functools.partial(search, top_k=top_k_by_reductions)), jit_compile=True
        )

    def run(image, width):
        def compute():
            ids = search(encode(tf.cast(image, tf.float32) / 255.0), width)
            kept = tf.ragged.boolean_mask(tf.gather(words, ids), ids != 0)
            return {"caption": tf.strings.reduce_join(kept, axis=1, separator=" "), "token_ids": ids}

        def empty():
            return {"caption": tf.zeros([0], tf.string), "token_ids": tf.zeros([0, length], tf.int32)}

        width_ok = Check(
            tf.logical_and(width >= 1, width <= MAX_BEAM_WIDTH),
            lambda: [f"beam_width: expected an integer in [1, {MAX_BEAM_WIDTH}]; got", width],
        )
        return guarded([*check_image(image, image_shape), width_ok], compute, empty)

    @tf.function(input_signature=[image_spec, tf.TensorSpec([], tf.int32, name="beam_width")])
    def generate(image, beam_width):
        return run(image, beam_width)

    @tf.function(input_signature=[image_spec])
    def serving_default(image):
        return run(image, tf.constant(1, tf.int32))

    return {"serving_default": serving_default, "generate": generate}


def export_captioner(model, path: str | os.PathLike, *, vocabulary: list[str], overwrite: bool = False,
                     xla: bool = True) -> str:
    """Writes a captioner's SavedModel atomically; see the module docstring.

    Args:
        model: a `cnn_lstm_captioner` model (its vocabulary size = len(vocabulary)).
        path: the directory to create.
        vocabulary: the token list it was trained with.
        overwrite: replace an existing export.
        xla: compile the decoding with XLA, the weights of a model up to
            `zoo.export.model_call.INLINE_WEIGHTS_MAX_BYTES` compiled in;
            False for a serving runtime built without XLA's CPU JIT.

    Returns:
        The absolute export path.

    Raises:
        ValueError: when the vocabulary does not fit the model's output.
        FileExistsError: if `path` exists and overwrite is False.
    """
    if len(vocabulary) != model.output.shape[-1]:
        raise ValueError(
            f"The vocabulary has {len(vocabulary)} tokens but the captioner predicts {model.output.shape[-1]} ids; "
            "pass the vocabulary it was trained with."
        )
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, function in _signatures(model, vocabulary, xla).items():
        archive.add_endpoint(name, function)
    length = model.input[keys.TOKEN_IDS].shape[1]
    spec = ModelSpec(tuple(model.input[keys.IMAGE].shape[1:]), length, ("caption",), (len(vocabulary),), False)
    metadata = metadata_lib.build_metadata(
        spec, export_format="tf_saved_model", model_file=None,
        inputs={"image": {"dtype": "uint8", "shape": [None, *spec.image_shape], "range": [0, 255]},
                "beam_width": {"dtype": "int32", "shape": [], "range": [1, MAX_BEAM_WIDTH]}},
        outputs={"caption": {"caption": "caption", "token_ids": "token_ids"}}, class_names={},
        vocabulary=vocabulary, signatures=list(CAPTIONER_SIGNATURES), extra={"kind": "captioner"},
    )
    with export_directory(path, overwrite=overwrite) as tmp:
        archive.write_out(tmp, verbose=False)
        metadata_lib.write_metadata(tmp, metadata)
    return os.path.abspath(os.fspath(path))


def caption(export_dir: str | os.PathLike, image, *, beam_width: int = 1, resize: bool = False) -> str:
    """The caption a captioner export writes for one image.

    Args:
        export_dir: a directory written by `export_captioner`.
        image: an image file path, or uint8 pixels [H, W, C] / [1, H, W, C].
        beam_width: 1 = greedy, up to `MAX_BEAM_WIDTH`.
        resize: scale an image file of another size to the model's size.

    Returns:
        The caption.

    Raises:
        ValueError: the export is not a captioner, or a bad image or beam width.
    """
    import numpy as np

    from zoo.export.inference import read_image

    metadata = metadata_lib.read_metadata(export_dir)
    if metadata.get("kind") != "captioner":
        raise ValueError(f"{os.fspath(export_dir)!r} holds a {metadata.get('kind', 'classifier')} export, not a captioner.")
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or not 1 <= beam_width <= MAX_BEAM_WIDTH:
        raise ValueError(f"beam_width={beam_width!r}: expected an integer in [1, {MAX_BEAM_WIDTH}].")
    shape = metadata["image_shape"]
    if isinstance(image, str | os.PathLike):
        pixels = read_image(image, shape, resize=resize)
    else:  # an array: its shape is checked in the graph
        pixels = np.asarray(image, np.uint8)
        pixels = pixels[None] if pixels.ndim == 3 else pixels
    generate = tf.saved_model.load(os.fspath(export_dir)).signatures["generate"]
    out = generate(image=tf.constant(pixels, tf.uint8), beam_width=tf.constant(beam_width, tf.int32))
    return out["caption"].numpy()[0].decode("utf-8")
