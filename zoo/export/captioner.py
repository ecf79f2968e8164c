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

Decoding is compiled with XLA (`xla=True`, the default), and each step does
only the work that is new at its position (`zoo.export.caption_steps`): the
image tower runs once per image, the LSTMs advance one token, the head runs
at one position.
"""

from __future__ import annotations

import functools
import os

import keras
import tensorflow as tf

from zoo.core import keys
from zoo.export import metadata as metadata_lib
from zoo.export.caption_steps import DecodingParts, decoding_parts, top_k_by_reductions
from zoo.export.model_call import compiled_tower, weight_constants, with_weight_constants
from zoo.export.signatures import Check, check_image, guarded, scale_image, static_image
from zoo.export.spec import ModelSpec
from zoo.export.target import export_directory

__all__ = ["export_captioner", "beam_decode", "MAX_BEAM_WIDTH", "CAPTIONER_SIGNATURES"]

MAX_BEAM_WIDTH = 16
CAPTIONER_SIGNATURES = ("serving_default", "generate")


def _select(tensor, beam):
    return tf.gather(tensor, beam, batch_dims=1)


def _beam_rows(tensor, beam):
    """Rows [batch * width, ...] of a decoder state, reordered as the beams were."""
    per_beam = tf.reshape(tensor, tf.concat([tf.shape(beam), tf.shape(tensor)[1:]], 0))
    return tf.reshape(_select(per_beam, beam), tf.shape(tensor))


def beam_decode(model, images: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Beam search in the graph; int32 [batch, max_length] ids of the best caption (0 after its end).

    Args:
        model: a `cnn_lstm_captioner` model.
        images: float32 [batch, H, W, C] in [0, 1].
        width: int32 scalar >= 1.
    """
    parts = decoding_parts(model)
    return _search(model, parts, parts.encode(images), width)


def _search(model, parts: DecodingParts, encoded: list, width: tf.Tensor, top_k=tf.math.top_k) -> tf.Tensor:
    """The beam search of `beam_decode` over images already encoded by `parts.encode`."""
    length = model.input[keys.TOKEN_IDS].shape[1]
    vocab = model.output.shape[-1]
    batch = tf.shape(encoded[0])[0]
    repeated = [tf.repeat(tensor, width, axis=0) for tensor in encoded]
    state = parts.start(batch * width)
    tokens = tf.zeros([batch, width, length], tf.int32)
    start = tf.one_hot(tf.zeros([batch, width], tf.int32), length, on_value=vocab, off_value=0, dtype=tf.int32)
    inputs = start
    first = tf.cast(tf.where(tf.range(width)[None, :] == 0, 0.0, -float("inf")), tf.float64)
    scores = first + tf.zeros([batch, 1], tf.float64)  # one live beam at the start, as in decoding.decode
    finished = tf.zeros([batch, width], tf.bool)
    end_only = tf.where(tf.range(vocab) == 0, 0.0, -float("inf"))[None, None, :]
    for position in range(length):
        probabilities, state = parts.step(repeated, state, tf.reshape(inputs, [-1, length]), position)
        log_p = tf.math.log(tf.reshape(tf.cast(probabilities, tf.float64), [batch, width, vocab]))
        log_p = tf.where(finished[..., None], tf.cast(end_only, tf.float64), log_p)
        candidates = tf.reshape(scores[..., None] + log_p, [batch, width * vocab])
        scores, best = top_k(candidates, width)
        beam, word = best // vocab, tf.cast(best % vocab, tf.int32)
        at = tf.one_hot(position, length, dtype=tf.int32)
        tokens = _select(tokens, beam) * (1 - at) + word[..., None] * at
        inputs, finished = _select(inputs, beam), tf.logical_or(_select(finished, beam), word == 0)
        state = [_beam_rows(tensor, beam) for tensor in state]
        if position + 1 < length:
            after = tf.one_hot(position + 1, length, dtype=tf.int32)
            inputs = inputs * (1 - after) + word[..., None] * after
    return tokens[:, 0]


def _signatures(model, vocabulary: list[str], xla: bool):
    image_shape = tuple(model.input[keys.IMAGE].shape[1:])
    words = tf.constant(vocabulary)
    image_spec = tf.TensorSpec([None, None, None, None], tf.uint8, name="image")
    parts = decoding_parts(model)
    encode = parts.encode
    search = functools.partial(_search, model, parts)
    if xla:
        # The search compiles once per batch size and beam width (XLA takes the width
        # as a compile-time constant). cnn_lstm_captioner at its defaults, greedy,
        # 5 interleaved rounds: batch 1 0.83 against 6.9 ms uncompiled with the same
        # cuts, batch 64 12.0 against 23.2 ms (bench_generative_serving.py).
        weights = weight_constants(model)
        if parts.image_tower:
            encode = compiled_tower(encode, weights, model)
        search = tf.function(
            with_weight_constants(weights, functools.partial(search, top_k=top_k_by_reductions)), jit_compile=True
        )

    def run(image, width):
        def compute():
            ids = search(encode(scale_image(static_image(image, image_shape))), width)
            kept = tf.ragged.boolean_mask(tf.gather(words, ids), ids != 0)
            return {"caption": tf.strings.reduce_join(kept, axis=1, separator=" "), "token_ids": ids}

        width_ok = Check(
            tf.logical_and(width >= 1, width <= MAX_BEAM_WIDTH),
            lambda: [f"beam_width: expected an integer in [1, {MAX_BEAM_WIDTH}]; got", width],
        )
        return guarded([*check_image(image, image_shape), width_ok], compute)

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
