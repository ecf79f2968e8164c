"""Serving functions: in-graph input checks, preprocessing, model call, named outputs.

TensorFlow's SignatureDef path (TF Serving, `saved_model_cli`, C++ clients)
does not enforce the shapes a signature declares, and a model answers NaN
inputs with NaN probabilities. So the signatures declare their inputs loosely
(any rank) and check everything inside the graph, before the model runs; every
failure is an `InvalidArgumentError` whose message starts with the input's
name.

Documented outcomes (signature `serving_default`):

| input | outcome |
|---|---|
| `image` not uint8 / `text` not string | rejected by TensorFlow before the graph runs: TypeError or ValueError from a Python signature call, InvalidArgumentError through a C++ session |
| `image` not rank 4, or H, W, C not the model's | InvalidArgumentError "image: expected shape [batch, H, W, C] ..." |
| `text` not rank 1 | InvalidArgumentError "text: expected a rank-1 string tensor [batch] ..." |
| image and text batch sizes differ | InvalidArgumentError "image/text: batch sizes differ ..." |
| a text longer than `max_text_bytes` (4096 by default) | InvalidArgumentError "text: each string must be at most N bytes ..." |
| non-finite pixel in `serving_float` | InvalidArgumentError "image: expected finite values ..." |
| empty string | tokenizes to all padding; finite probabilities from the image alone (text-only models: the model's answer for no words) |
| invalid UTF-8 | invalid bytes become U+FFFD, so such a word is unknown (id 1); finite result |
| unknown words | id 1 (`[UNK]`); finite result |
| batch 0 | empty outputs ([0, classes] probabilities, [0] labels) |
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import tensorflow as tf

from zoo.core import keys
from zoo.export import MAX_TEXT_BYTES
from zoo.export.model_call import compiled_model_outputs, numeric_outputs, output_names
from zoo.export.spec import ModelSpec

__all__ = [
    "MAX_TEXT_BYTES",
    "check_image",
    "check_text",
    "check_same_batch",
    "guarded",
    "on_failure",
    "Check",
    "make_serving_function",
    "make_token_id_function",
    "output_names",
    "compiled_model_outputs",
    "named_outputs",
    "empty_outputs",
    "padded_shape",
    "static_image",
    "scale_image",
]


_SUMMARIZE = 8


def _shape_text(shape) -> str:
    return "[batch, " + ", ".join("?" if d is None else str(d) for d in shape) + "]"


@dataclasses.dataclass(frozen=True)
class Check:
    """One input check: a scalar bool `ok` and the message data for `tf.Assert`."""

    ok: tf.Tensor
    data: Callable[[], list]


def padded_shape(tensor: tf.Tensor, rank: int) -> tf.Tensor:
    """The tensor's shape padded with zeros to `rank` entries (indexing it cannot fail)."""
    # The shape padded with zeros to at least `rank` entries, so indexing it
    # cannot fail whatever rank a client sends.
    return tf.concat([tf.shape(tensor), tf.zeros([rank], tf.int32)], axis=0)[:rank]


def check_image(image: tf.Tensor, expected: tuple, *, finite: bool = False) -> list[Check]:
    """Checks an image batch against the model's (H, W, C).

    Args:
        image: the signature's `image` tensor, of any rank.
        expected: (H, W, C) with None for dims the model accepts at any size.
        finite: also require every value to be finite (float variants).

    Returns:
        The checks; none of their `ok` computations can fail.
    """
    shape_text = _shape_text(expected)
    shape = padded_shape(image, 4)
    rank_ok = tf.equal(tf.rank(image), 4)
    known = [i for i, d in enumerate(expected) if d is not None]
    dims_ok = tf.reduce_all(
        tf.equal(
            tf.gather(shape[1:], tf.constant(known, tf.int32)),
            tf.constant([expected[i] for i in known], tf.int32),
        )
    )
    checks = [
        Check(
            tf.logical_and(rank_ok, dims_ok),
            lambda: [f"image: expected a tensor of shape {shape_text}; got shape", tf.shape(image)],
        )
    ]
    if finite:
        all_finite = tf.reduce_all(tf.math.is_finite(image))
        checks.append(
            Check(
                all_finite,
                lambda: [
                    "image: expected finite values (no NaN or Inf); non-finite values at indices",
                    on_failure(all_finite, lambda: tf.where(tf.logical_not(tf.math.is_finite(image))), tf.int64),
                ],
            )
        )
    return checks


def check_text(text: tf.Tensor, max_bytes: int = MAX_TEXT_BYTES) -> list[Check]:
    """Checks a text batch: rank 1 and no string longer than `max_bytes` bytes."""
    # Of no strings the longest is int32's minimum, which passes.
    longest = tf.reduce_max(tf.strings.length(text, unit="BYTE"))
    return [
        Check(
            tf.equal(tf.rank(text), 1),
            lambda: ["text: expected a rank-1 string tensor [batch]; got shape", tf.shape(text)],
        ),
        Check(
            longest <= max_bytes,
            lambda: [f"text: each string must be at most {max_bytes} bytes; got one of", longest, "bytes"],
        ),
    ]


def check_same_batch(image: tf.Tensor, text: tf.Tensor) -> Check:
    """Checks that image and text have the same batch size."""
    image_batch = padded_shape(image, 1)[0]
    text_batch = padded_shape(text, 1)[0]
    return Check(
        tf.equal(image_batch, text_batch),
        lambda: ["image/text: batch sizes differ: image has", image_batch, "examples, text has", text_batch],
    )


def guarded(checks: list[Check], compute: Callable[[], dict]) -> dict:
    """Builds `compute`'s ops so that they run only once every check has passed.

    Each check is an assert, and every op `compute` builds waits for all of
    them (control dependencies): nothing reads an unchecked input, and a
    failing check raises its own message, never a later op's. `compute` must
    build its outputs from the inputs, not return an input as it is.

    The asserts replace a `tf.cond` on all checks, whose switch and merge ops
    and untaken branch cost the seed model's batch-1 call 14-16 µs (332-365
    against 316-349 µs, medians of 9-11 interleaved rounds, three runs).

    Args:
        checks: from `check_image`, `check_text`, `check_same_batch`.
        compute: builds the outputs from the checked inputs.
    """
    if not checks:
        return compute()
    asserts = [tf.debugging.Assert(c.ok, c.data(), summarize=_SUMMARIZE) for c in checks]
    with tf.control_dependencies(asserts):
        return compute()


def on_failure(ok: tf.Tensor, data: Callable[[], tf.Tensor], dtype: tf.DType) -> tf.Tensor:
    """A check's message data that costs a pass over the input, computed only when `ok` is False.

    `guarded` computes every check's data on every call (the assert's inputs);
    this puts costly data behind a branch instead.
    """
    return tf.cond(ok, lambda: tf.zeros([0], dtype), data)


def named_outputs(model, spec: ModelSpec, feeds: dict, class_names: dict, compute=None) -> dict[str, tf.Tensor]:
    """Probabilities, labels and class names per head; `compute` replaces the numeric part (an XLA build)."""
    outputs = (compute or functools.partial(numeric_outputs, model, spec))(feeds)
    names = output_names(spec)
    for head in spec.heads:
        if head in class_names:
            table = tf.constant(class_names[head], dtype=tf.string)
            outputs[names[head]["class_name"]] = tf.gather(table, outputs[names[head]["label"]])
    return outputs


def make_serving_function(
    model,
    spec: ModelSpec,
    tokenizer,
    class_names: dict,
    *,
    image_dtype: tf.DType = tf.uint8,
    max_text_bytes: int = MAX_TEXT_BYTES,
    model_outputs: Callable | None = None,
) -> tuple[Callable, list[tf.TensorSpec]]:
    """Builds the raw-input serving function and its input signature.

    Args:
        model: the Keras model.
        spec: from `inspect_model`.
        tokenizer: a `zoo.data.text.Tokenizer` (or, for KerasHub text
            backbones, a `zoo.data.hub_text.BackboneTokenizer`) for text
            models, else None.
        class_names: {head: names} from `resolve_class_names`.
        image_dtype: tf.uint8 (pixels 0-255, scaled in the graph) or
            tf.float32 (already in [0, 1], checked to be finite).
        max_text_bytes: longest text accepted, in bytes.
        model_outputs: the model call compiled with XLA (`compiled_model_outputs`,
            much faster on CPUs; each new batch size compiles once), one for
            all signatures of an export; None calls the model uncompiled, for
            runtimes built without XLA.

    Returns:
        (fn, input_signature) for `ExportArchive.add_endpoint`.
    """
    finite = image_dtype.is_floating

    def run(image=None, text=None):
        checks = []
        if image is not None:
            checks += check_image(image, spec.image_shape, finite=finite)
        if text is not None:
            checks += check_text(text, max_text_bytes)
        if image is not None and text is not None:
            checks.append(check_same_batch(image, text))

        def prepared(image, text):
            feeds = {}
            if image is not None:
                feeds[keys.IMAGE] = scale_image(static_image(image, spec.image_shape))
            if text is not None:
                encoded = tokenizer(tf.reshape(text, [-1]))
                # A backbone's tokenizer (zoo.data.hub_text) gives all of its inputs by name.
                feeds.update(encoded if isinstance(encoded, dict) else {keys.TOKEN_IDS: encoded})
            return feeds

        # The model reads only what the guarded preprocessing gives, so it never runs on
        # unchecked inputs.
        feeds = guarded(checks, lambda: prepared(image, text))
        if model_outputs is not None:
            # The compiled call takes an empty batch itself.
            return named_outputs(model, spec, feeds, class_names, model_outputs)
        batch = tf.shape(next(iter(feeds.values())))[0]
        # oneDNN's convolution rejects an empty batch on some CPUs, so the
        # model runs only on a non-empty one.
        return tf.cond(
            batch > 0,
            lambda: named_outputs(model, spec, feeds, class_names, model_outputs),
            lambda: empty_outputs(spec, class_names),
        )

    image_spec = tf.TensorSpec(None, image_dtype, name=keys.IMAGE)
    text_spec = tf.TensorSpec(None, tf.string, name=keys.TEXT)
    if spec.has_image and spec.has_text:

        def serve(image, text):
            return run(image=image, text=text)

        return serve, [image_spec, text_spec]
    if spec.has_image:

        def serve(image):
            return run(image=image)

        return serve, [image_spec]

    def serve(text):
        return run(text=text)

    return serve, [text_spec]


def make_token_id_function(model, spec: ModelSpec) -> tuple[Callable, list[tf.TensorSpec]]:
    """Builds the function ONNX and LiteRT get: uint8 image and int32 token ids in.

    String ops and asserts cannot go into those formats; their runtimes check
    dtypes and static shapes themselves, and the client tokenizes.

    Returns:
        (fn, input_signature); outputs as in the SavedModel minus class names.
    """

    def run(image=None, token_ids=None):
        feeds = {}
        if image is not None:
            feeds[keys.IMAGE] = scale_image(image)
        if token_ids is not None:
            feeds[keys.TOKEN_IDS] = token_ids
        return named_outputs(model, spec, feeds, {})

    image_spec = tf.TensorSpec([None, *spec.image_shape], tf.uint8, name=keys.IMAGE) if spec.has_image else None
    ids_spec = tf.TensorSpec([None, spec.max_length], tf.int32, name=keys.TOKEN_IDS) if spec.has_text else None
    if spec.has_image and spec.has_text:

        def serve(image, token_ids):
            return run(image=image, token_ids=token_ids)

        return serve, [image_spec, ids_spec]
    if spec.has_image:

        def serve(image):
            return run(image=image)

        return serve, [image_spec]

    def serve(token_ids):
        return run(token_ids=token_ids)

    return serve, [ids_spec]


def static_image(image: tf.Tensor, expected: tuple) -> tf.Tensor:
    """A checked image reshaped to the model's static (H, W, C)."""
    # Gives the checked image its static shape with a reshape, not
    # `tf.ensure_shape`: Grappler reads EnsureShape as a fact about its input
    # and folds the rank check before it to "true".
    shape = padded_shape(image, 4)
    dims = [shape[0]] + [shape[i + 1] if d is None else d for i, d in enumerate(expected)]
    return tf.reshape(image, tf.stack(dims))


def empty_outputs(spec: ModelSpec, class_names: dict) -> dict[str, tf.Tensor]:
    """Outputs of the signature's structure for a batch of 0."""
    outputs = {}
    for head, width in zip(spec.heads, spec.num_classes, strict=True):
        names = output_names(spec)[head]
        outputs[names["probabilities"]] = tf.zeros([0, width], tf.float32)
        outputs[names["label"]] = tf.zeros([0], tf.int64)
        if head in class_names:
            outputs[names["class_name"]] = tf.zeros([0], tf.string)
    return outputs


def scale_image(image: tf.Tensor) -> tf.Tensor:
    """Pixels as float32 in [0, 1] (uint8 divided by 255)."""
    # The models take pixels in [0, 1]; the pipeline does the same division.
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) / 255.0
    return tf.cast(image, tf.float32)

