"""TensorFlow SavedModel export: raw pixels and raw text in, checked in the graph.

The SavedModel holds plain TensorFlow functions (through
`keras.export.ExportArchive`), the tokenizer's lookup table and the weights;
loading it needs TensorFlow only, not Keras, the zoo or any custom layer class.

Signatures:

- `serving_default`: `image` uint8 [batch, H, W, C] (pixels 0-255) and/or
  `text` string [batch]; outputs `probabilities` float32 [batch, classes],
  `label` int64 [batch] and, when class names were given, `class_name`
  string [batch]. Extra heads of a multi-output model add `<head>_probabilities`,
  `<head>_label`, `<head>_class_name`.
- `serving_float` (image models only): the same, with `image` float32 in
  [0, 1]; non-finite values are rejected.

Models that read audio take `audio` [batch, samples] at the model's rate:
int16 in `serving_default`, float32 in [-1, 1] in `serving_float` (which
every audio model has, with a float32 image where it reads one); the
metadata's `inputs.audio` names the rate, the dtype and the length cap.

See `zoo.export.signatures` and `zoo.export.audio_signature` for the input
checks and their outcomes.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from zoo.data.text import Tokenizer
from zoo.export import metadata as metadata_lib
from zoo.export.model_call import compiled_model_outputs
from zoo.export.signatures import MAX_TEXT_BYTES, make_serving_function, output_names
from zoo.export.spec import ModelSpec
from zoo.export.target import export_directory

__all__ = ["export_saved_model", "SIGNATURES"]

SIGNATURES = ("serving_default", "serving_float")


def export_saved_model(
    model,
    path: str | os.PathLike,
    spec: ModelSpec,
    *,
    vocabulary: list[str] | None,
    class_names: dict[str, list[str]],
    overwrite: bool = False,
    max_text_bytes: int = MAX_TEXT_BYTES,
    max_audio_samples: int | None = None,
    tokenizer=None,
    xla: bool = True,
) -> str:
    """Writes the SavedModel directory atomically; see the module docstring.

    Args:
        model: the Keras model.
        path: the directory to create.
        spec: from `zoo.export.spec.inspect_model`.
        vocabulary: the token list for text models.
        class_names: {head: names}.
        overwrite: replace an existing directory.
        max_text_bytes: the longest text accepted.
        max_audio_samples: the most audio samples accepted per example
            (required for models that read audio).
        tokenizer: a `zoo.data.hub_text.BackboneTokenizer` for a model on a
            KerasHub text backbone, used instead of `vocabulary`; loading the
            export then needs `import tensorflow_text` for its ops.
        xla: compile the model call of every signature with XLA (see
            `zoo.export.signatures.compiled_model_outputs`).

    Returns:
        The absolute export path.

    Raises:
        FileExistsError: if `path` exists and overwrite is False.
        NotAnExportError: (a FileExistsError) if `path` holds something other than a zoo export.
    """
    if tokenizer is None and spec.has_text:
        tokenizer = Tokenizer(vocabulary, spec.max_length)
    archive = keras.export.ExportArchive()
    archive.track(model)
    if tokenizer is not None:
        # Its lookup table, saved with it, is the export's record of the vocabulary (`zoo.export.metadata`).
        archive.track(tokenizer)
    if spec.has_audio:
        signatures = _add_audio_endpoints(
            archive, model, spec, tokenizer, class_names, max_text_bytes, max_audio_samples, xla
        )
    else:
        # One compiled model call for both signatures: each function, with any
        # weights compiled into it, is saved once.
        model_outputs = compiled_model_outputs(model, spec) if xla else None
        serve, signature = make_serving_function(
            model, spec, tokenizer, class_names, image_dtype=tf.uint8, max_text_bytes=max_text_bytes,
            model_outputs=model_outputs,
        )
        archive.add_endpoint("serving_default", serve, input_signature=signature)
        signatures = ["serving_default"]
    if spec.has_image and not spec.has_audio:
        serve_float, float_signature = make_serving_function(
            model, spec, tokenizer, class_names, image_dtype=tf.float32, max_text_bytes=max_text_bytes,
            model_outputs=model_outputs,
        )
        archive.add_endpoint("serving_float", serve_float, input_signature=float_signature)
        signatures.append("serving_float")

    inputs = {}
    if spec.has_image:
        inputs["image"] = {"dtype": "uint8", "shape": [None, *spec.image_shape], "range": [0, 255]}
    if spec.has_text:
        inputs["text"] = {"dtype": "string", "shape": [None], "max_bytes": max_text_bytes}
    audio_extra = {}
    if spec.has_audio:
        inputs["audio"] = _audio_metadata(spec, max_audio_samples)
        audio_extra = {"audio_sample_rate": spec.sample_rate, "max_audio_samples": max_audio_samples}
    metadata = metadata_lib.build_metadata(
        spec,
        export_format="tf_saved_model",
        model_file=None,
        inputs=inputs,
        outputs=output_names(spec),
        class_names=class_names,
        vocabulary=vocabulary,
        signatures=signatures,
        extra={"max_text_bytes": max_text_bytes if spec.has_text else None, **audio_extra,
               **({"text_preset": tokenizer.preset, "needs": "import tensorflow_text"}
                  if hasattr(tokenizer, "preset") else {})},
    )
    with export_directory(path, overwrite=overwrite) as tmp:
        archive.write_out(tmp, verbose=False)
        metadata_lib.write_metadata(tmp, metadata)
    return os.path.abspath(os.fspath(path))


def _add_audio_endpoints(archive, model, spec, tokenizer, class_names, max_text_bytes, max_audio_samples, xla) -> list[str]:
    from zoo.export.audio_signature import audio_window, make_audio_serving_function

    if max_audio_samples is None:
        raise ValueError("max_audio_samples is required for a model that reads audio.")
    # Shared by both signatures, as in `export_saved_model`; a model without a
    # fixed window runs uncompiled, since XLA would compile every recording length.
    compiled = xla and audio_window(model) is not None
    # Audio models keep XLA's convolutions: with patch products a batch-1 call of
    # cnn_audio_concat took 0.53-0.57 against 0.41-0.43 ms, of melcnn_audio 0.38-0.40
    # against 0.37-0.39 (5 interleaved rounds).
    model_outputs = compiled_model_outputs(model, spec, convolutions_as_products=False) if compiled else None
    for name, floating in (("serving_default", False), ("serving_float", True)):
        serve, signature = make_audio_serving_function(
            model, spec, tokenizer, class_names, floating=floating,
            max_audio_samples=max_audio_samples, max_text_bytes=max_text_bytes, model_outputs=model_outputs,
        )
        archive.add_endpoint(name, serve, input_signature=signature)
    return ["serving_default", "serving_float"]


def _audio_metadata(spec: ModelSpec, max_audio_samples: int) -> dict:
    """What a client needs to send audio: rate, dtype per signature, scale and length cap."""
    return {
        "dtype": "int16",
        "shape": [None, None],
        "sample_rate": spec.sample_rate,
        "max_samples": max_audio_samples,
        "range": [-32768, 32767],
        "float_signature": {"name": "serving_float", "dtype": "float32", "range": [-1.0, 1.0], "scale": "int16 / 32768"},
        "padding": "zeros at the end (the model pads or crops each waveform to its window)",
    }
