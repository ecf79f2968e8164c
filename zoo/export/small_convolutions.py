"""Small 2-D convolutions as one gather and one matrix product, for XLA on a CPU.

At a few images, XLA's CPU convolution costs more than its arithmetic: it
splits the work over the thread pool and finishes there, and the rest of the
call waits for it. A small feature map multiplies faster as its patches,
gathered into a matrix, times the kernel. Measured on a 2-core CPU, median of
5 interleaved rounds, against XLA's convolutions:

- the seed model's SavedModel `serving_default` (3x3 convolutions over 28x28x1
  and 13x13x32): batch 1 0.399 against 0.483 ms, 2 0.603 against 0.672, 4
  0.804 against 0.817, 8 1.118 against 1.309, 15 1.701 against 1.888;
- the dual encoder's `embed_image` (the same image tower), batch 1 0.226
  against 0.276 ms;
- one 3x3 `same` convolution alone at batch 1: 63x40x1 135 against 227 us,
  31x20x16 180 against 206, 14x14x64 203 against 244, but 28x28x32 288
  against 240. So only feature maps of up to `MAX_PATCH_VALUES` patch values
  per image take the product.

Serving functions trace their compiled model calls inside
`small_convolutions_as_products`; XLA knows the batch size when it compiles,
so choosing between the two forms costs nothing per call. Audio models keep
XLA's convolutions (see `zoo.export.saved_model`).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "MAX_PATCH_VALUES",
    "patch_product",
    "small_convolutions_as_products",
    "with_small_convolutions_as_products",
]

# Patch values per image (output positions x kernel height x width x input
# channels) up to which the product form is used: 14x14x64 under a 3x3 kernel
# has 112,896 (faster), 28x28x32 225,792 (slower).
MAX_PATCH_VALUES = 2**17


def patch_product(
    inputs: tf.Tensor, kernel: tf.Tensor, strides: tuple[int, int], padding: str
) -> tf.Tensor:
    """A 2-D convolution, channels last, as gathered patches times the reshaped kernel.

    Args:
        inputs: [batch, H, W, C] with static H, W and C.
        kernel: [kh, kw, C, filters], Keras' layout.
        strides: (rows, columns).
        padding: "valid" or "same" (TensorFlow's rule: the extra row or column at the end).

    Returns:
        What `tf.nn.conv2d(inputs, kernel, strides, padding.upper())` returns.

    Raises:
        ValueError: for another padding.
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same'; got {padding!r}.")
    kernel_rows, kernel_cols, channels, filters = kernel.shape
    height, width = inputs.shape[1], inputs.shape[2]
    rows, rows_inside = _sources(height, kernel_rows, strides[0], padding)
    cols, cols_inside = _sources(width, kernel_cols, strides[1], padding)
    out_rows, out_cols = len(rows), len(cols)
    # Flat position of each patch value, patches in output order, values in the kernel's (row, column) order.
    index = rows[:, None, :, None] * width + cols[None, :, None, :]
    index = index.reshape(out_rows * out_cols, kernel_rows * kernel_cols).astype(np.int32)
    patches = tf.gather(tf.reshape(inputs, [-1, height * width, channels]), index, axis=1)
    inside = (rows_inside[:, None, :, None] & cols_inside[None, :, None, :]).reshape(index.shape)
    if not inside.all():
        # Zeros where `same` padding would read past the border: a selection XLA fuses into
        # the gather, where padding the input first costs a copy (one 3x3 `same` layer over
        # 31x20x16 at batch 1: 180 against 305 us).
        patches = tf.where(inside[:, :, None], patches, tf.zeros((), patches.dtype))
    patches = tf.reshape(patches, [-1, out_rows * out_cols, kernel_rows * kernel_cols * channels])
    products = tf.matmul(patches, tf.reshape(kernel, [-1, filters]))
    return tf.reshape(products, [-1, out_rows, out_cols, filters])


def _sources(size: int, kernel: int, stride: int, padding: str) -> tuple[np.ndarray, np.ndarray]:
    """Per output position and kernel offset along one axis: the input position read (clipped
    into the input) and whether it lies inside the input rather than in the padding."""
    before = _same_padding(size, kernel, stride)[0] if padding == "same" else 0
    offsets = np.arange(_output_size(size, kernel, stride, padding))[:, None] * stride
    sources = offsets + np.arange(kernel)[None, :] - before
    return np.clip(sources, 0, size - 1), (sources >= 0) & (sources < size)


def _output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    return math.ceil((size if padding == "same" else size - kernel + 1) / stride)


def _same_padding(size: int, kernel: int, stride: int) -> list[int]:
    total = max((_output_size(size, kernel, stride, "same") - 1) * stride + kernel - size, 0)
    return [total // 2, total - total // 2]


def _takes_product(layer) -> bool:
    """Whether a layer is a plain Keras 2-D convolution the product form computes."""
    return (
        isinstance(layer, keras.layers.Conv2D)
        # A subclass with its own convolution keeps it.
        and type(layer).convolution_op is keras.layers.Conv2D.convolution_op
        and layer.groups == 1
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.data_format == "channels_last"
        and layer.padding in ("valid", "same")
    )


def _convolutions(layer) -> Iterator:
    if _takes_product(layer):
        yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _convolutions(inner)


def _convolution_op(layer, max_rows: int, inputs, kernel):
    original = functools.partial(keras.layers.Conv2D.convolution_op, layer)
    height, width, channels = inputs.shape[1:]
    if None in (height, width, channels):
        return original(inputs, kernel)
    kernel_rows, kernel_cols = kernel.shape[:2]
    positions = _output_size(height, kernel_rows, layer.strides[0], layer.padding) * _output_size(
        width, kernel_cols, layer.strides[1], layer.padding
    )
    if positions * kernel_rows * kernel_cols * channels > MAX_PATCH_VALUES:
        return original(inputs, kernel)

    def product():
        return patch_product(inputs, kernel, tuple(layer.strides), layer.padding)

    if inputs.shape[0] is not None:
        return product() if inputs.shape[0] < max_rows else original(inputs, kernel)
    return tf.cond(tf.shape(inputs)[0] < max_rows, product, lambda: original(inputs, kernel))


@contextlib.contextmanager
def small_convolutions_as_products(layer, max_rows: int):
    """While open, `layer`'s small `Conv2D` layers compute batches under `max_rows` rows as patch products.

    Covers every plain `keras.layers.Conv2D` in `layer` and the layers (and
    models) inside it, with one group, no dilation, channels last and at
    most `MAX_PATCH_VALUES` patch values per image; others are left as they
    are. Meant for tracing an XLA-compiled function: the layers' own
    convolutions come back on exit, and what traced meanwhile keeps the
    product form. A call of the same layers from another thread meanwhile
    computes the same values.

    Args:
        layer: a Keras layer or model.
        max_rows: batches of this many rows or more keep the convolution.
    """
    # One already inside an open scope stays with that scope.
    convolutions = [c for c in _convolutions(layer) if "convolution_op" not in vars(c)]
    for convolution in convolutions:
        # Past Keras' attribute tracking: this is a method override, not state.
        object.__setattr__(
            convolution, "convolution_op", functools.partial(_convolution_op, convolution, max_rows)
        )
    try:
        yield
    finally:
        for convolution in convolutions:
            object.__delattr__(convolution, "convolution_op")


def with_small_convolutions_as_products(layer, max_rows: int, function: Callable) -> Callable:
    """`function`, tracing inside `small_convolutions_as_products(layer, max_rows)`."""

    # No `functools.wraps`: AutoGraph, converting `call`, would look for the source of
    # the `__wrapped__` it sets, and a partial has none.
    def call(*args, **kwargs):
        with small_convolutions_as_products(layer, max_rows):
            return function(*args, **kwargs)

    return call
