"""LiteRT (TensorFlow Lite) export of the token-id model.

Same inputs and outputs as the ONNX export (`image` uint8, `token_ids` int32;
`probabilities`, `label`), written as `model.tflite` with `vocabulary.txt` and
`TOKENIZE.md` beside it. Only built-in LiteRT ops are allowed, so the file runs
on the plain interpreter (`ai_edge_litert.interpreter.Interpreter`) without
Flex (TensorFlow) ops. Keras' recurrent loop (`tf.while_loop` over TensorLists)
needs Flex ops, so the export converts a copy of the model with every
recurrent layer unrolled (`unrolled_copy`: same weights, same outputs).
"""

from __future__ import annotations

import os
import tempfile

import keras
import tensorflow as tf

from zoo.core.atomic import atomic_write_bytes
from zoo.export import metadata as metadata_lib
from zoo.export.signatures import MAX_TEXT_BYTES, make_token_id_function, output_names
from zoo.export.spec import ModelSpec, describe_inputs, non_unrolled_rnns, token_id_inputs
from zoo.export.target import export_directory

__all__ = ["export_litert", "MODEL_FILE", "unrolled_copy"]

MODEL_FILE = "model.tflite"


def export_litert(
    model,
    path: str | os.PathLike,
    spec: ModelSpec,
    *,
    vocabulary: list[str] | None,
    class_names: dict[str, list[str]],
    overwrite: bool = False,
    max_text_bytes: int = MAX_TEXT_BYTES,
) -> str:
    """Writes `model.tflite` (+ vocabulary, TOKENIZE.md, metadata) into a new directory.

    Returns:
        The absolute export path.

    Raises:
        ValueError: if the model needs ops the plain LiteRT interpreter lacks.
        FileExistsError: if `path` exists and overwrite is False.
        NotAnExportError: (a FileExistsError) if `path` holds something other than a zoo export.
    """
    if non_unrolled_rnns(model):
        model = unrolled_copy(model)
    fn, signature = make_token_id_function(model, spec)
    archive = keras.export.ExportArchive()
    archive.track(model)
    # The converter freezes variables reliably only from a SavedModel written
    # by ExportArchive; converting the concrete function directly left
    # uninitialized resource variables (NaN outputs).
    archive.add_endpoint("serving_default", fn, input_signature=signature)
    with tempfile.TemporaryDirectory(prefix="zoo-litert-") as saved_model_dir:
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # ConverterError carries the MLIR diagnostics
            first = next((line for line in str(error).splitlines() if "error:" in line), str(error)[:500])
            raise ValueError(
                f"LiteRT conversion failed: the model needs ops outside LiteRT's built-in set ({first.strip()})."
            ) from error
    names = output_names(spec)
    inputs = token_id_inputs(spec)
    metadata = metadata_lib.build_metadata(
        spec,
        export_format="litert",
        model_file=MODEL_FILE,
        inputs=inputs,
        outputs={h: {k: v for k, v in o.items() if k != "class_name"} for h, o in names.items()},
        class_names=class_names,
        vocabulary=vocabulary,
        signatures=["serving_default"],
        extra={"max_text_bytes": max_text_bytes if spec.has_text else None},
    )
    with export_directory(path, overwrite=overwrite) as tmp:
        atomic_write_bytes(os.path.join(tmp, MODEL_FILE), flatbuffer)
        if spec.has_text:
            metadata_lib.write_tokenizer_files(
                tmp,
                vocabulary,
                format_name="LiteRT",
                max_length=spec.max_length,
                max_bytes=max_text_bytes,
                inputs=describe_inputs(inputs),
                outputs=", ".join(f"`{n}`" for o in names.values() for k, n in o.items() if k != "class_name"),
            )
        metadata_lib.write_metadata(tmp, metadata)
    return os.path.abspath(os.fspath(path))


def unrolled_copy(model):
    """Returns a copy of a functional model with every recurrent layer unrolled.

    Unrolling changes how the time loop is computed, not the weights, so the
    copy gives the same outputs; LiteRT can run it without Flex ops.

    Raises:
        ValueError: if the model is not functional or a recurrent layer has no
            fixed number of time steps.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        raise ValueError(f"unrolled_copy needs a functional keras.Model, got {type(model).__name__}.")

    def clone(layer):
        config = layer.get_config()
        _set_unroll(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _set_unroll(config) -> bool:
    changed = False
    if isinstance(config, dict):
        if "unroll" in config and config["unroll"] is False:
            config["unroll"] = True
            changed = True
        for value in config.values():
            changed = _set_unroll(value) or changed
    elif isinstance(config, list):
        for value in config:
            changed = _set_unroll(value) or changed
    return changed
