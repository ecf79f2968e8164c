"""ONNX export of the token-id model (string preprocessing cannot go into ONNX).

The ONNX graph takes `image` uint8 [batch, H, W, C] (scaled in the graph, as in
the SavedModel) and/or `token_ids` int32 [batch, max_length], and returns
`probabilities` float32 and `label` int64 (extra heads prefixed by their name).
Text models ship `vocabulary.txt` and `TOKENIZE.md` beside `model.onnx`.
Conversion uses tf2onnx on the traced TensorFlow function, so recurrent layers
need no unrolling; `PackedLSTM` layers become ONNX's own LSTM operator
(`zoo.layers.packed_lstm.tracing_for_onnx`).
"""

from __future__ import annotations

import contextlib
import logging
import os

import tensorflow as tf

from zoo.core.atomic import atomic_write_bytes
from zoo.export import metadata as metadata_lib
from zoo.export.signatures import MAX_TEXT_BYTES, make_token_id_function, output_names
from zoo.export.spec import ModelSpec, describe_inputs, token_id_inputs
from zoo.export.target import export_directory
from zoo.layers.packed_lstm import tracing_for_onnx

__all__ = ["export_onnx", "MODEL_FILE", "DEFAULT_OPSET"]

MODEL_FILE = "model.onnx"
# Opset 17 is what onnxruntime >= 1.14 runs everywhere and covers LayerNormalization.
DEFAULT_OPSET = 17


def export_onnx(
    model,
    path: str | os.PathLike,
    spec: ModelSpec,
    *,
    vocabulary: list[str] | None,
    class_names: dict[str, list[str]],
    overwrite: bool = False,
    max_text_bytes: int = MAX_TEXT_BYTES,
    opset: int = DEFAULT_OPSET,
) -> str:
    """Writes `model.onnx` (+ vocabulary, TOKENIZE.md, metadata) into a new directory.

    Returns:
        The absolute export path.

    Raises:
        ImportError: if tf2onnx is not installed.
        ValueError: if tf2onnx cannot convert the model.
        FileExistsError: if `path` exists and overwrite is False.
        NotAnExportError: (a FileExistsError) if `path` holds something other than a zoo export.
    """
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "ONNX export needs tf2onnx (and onnx): pip install 'zoo[export]' or pip install tf2onnx onnxruntime."
        ) from error
    fn, signature = make_token_id_function(model, spec)
    function = tf.function(fn, input_signature=signature, autograph=False)
    # PackedLSTM then traces the loop tf2onnx turns into ONNX's LSTM operator.
    with _quiet("tf2onnx", "tensorflow"), tracing_for_onnx():
        try:
            proto, _ = tf2onnx.convert.from_function(
                function, input_signature=signature, opset=opset, custom_op_handlers={"Erfc": (_erfc, [])}
            )
        except Exception as error:  # tf2onnx raises bare Exceptions for unsupported ops
            raise ValueError(f"ONNX conversion failed for this model: {type(error).__name__}: {error}") from error
    _check_onnx(proto)
    names = output_names(spec)
    inputs = token_id_inputs(spec)
    metadata = metadata_lib.build_metadata(
        spec,
        export_format="onnx",
        model_file=MODEL_FILE,
        inputs=inputs,
        outputs={h: {k: v for k, v in o.items() if k != "class_name"} for h, o in names.items()},
        class_names=class_names,
        vocabulary=vocabulary,
        extra={"opset": opset, "max_text_bytes": max_text_bytes if spec.has_text else None},
    )
    with export_directory(path, overwrite=overwrite) as tmp:
        atomic_write_bytes(os.path.join(tmp, MODEL_FILE), proto.SerializeToString())
        if spec.has_text:
            metadata_lib.write_tokenizer_files(
                tmp,
                vocabulary,
                format_name="ONNX",
                max_length=spec.max_length,
                max_bytes=max_text_bytes,
                inputs=describe_inputs(inputs),
                outputs=", ".join(f"`{n}`" for o in names.values() for k, n in o.items() if k != "class_name"),
            )
        metadata_lib.write_metadata(tmp, metadata)
    return os.path.abspath(os.fspath(path))


def _erfc(ctx, node, name, args):
    """tf2onnx handler: Erfc (from exact GELU) as 1 - Erf, since ONNX has Erf but no Erfc."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    node.type = "Erf"
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=dtype))
    sub = ctx.insert_new_node_on_output(
        "Sub", node.output[0], inputs=[one.output[0], node.output[0]], name=utils.make_name(f"{name}_erfc")
    )
    ctx.set_dtype(sub.output[0], ctx.get_dtype(node.output[0]))
    ctx.copy_shape(node.output[0], sub.output[0])


def _check_onnx(proto) -> None:
    # tf2onnx can emit nodes ONNX does not define (it passes unknown TF ops
    # through); fail at export time, not when a client loads the file.
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as error:
        raise ValueError(
            f"ONNX conversion produced an invalid model (an op ONNX does not define?): {str(error).splitlines()[0][:300]}"
        ) from error


@contextlib.contextmanager
def _quiet(*logger_names: str):
    # tf2onnx logs every optimizer pass at INFO, and TensorFlow warns that it cannot
    # serialize a lookup table's initializer that an earlier SavedModel export left
    # in its graph collections (not part of this graph); keep the user's terminal readable.
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
