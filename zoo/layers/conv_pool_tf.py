"""A 2-D convolution over few input channels and the 2x2 max pooling after it, as one XLA kernel.

The seed CNN's first convolution reads one channel: each output is 9 products.
TensorFlow computes it as image patches times the kernel, small matrix
products that keep a CPU core busy far longer than their arithmetic, then
writes the full-size feature map (32 channels at 26x26, 11 MB at batch 128)
for the pooling to read back and shrink fourfold. Here each pooled output is
computed in place: for each of the pooling window's four positions, the sum
of shifted input slices times the kernel's taps, then their maximum, the bias
and the activation (a ReLU commutes with the maximum). Under XLA that is one
loop over the pooled map, nothing written at full size.

The backward pass is written out (`tf.custom_gradient`): the pooled gradient
goes to the window position that won (the first one in row-major order on a
tie, as TensorFlow's pooling gradient does), the kernel gradient is one matrix
product of the input slices and those gradients, and the input gradient (only
computed where something reads it) is TensorFlow's own.

This module imports TensorFlow; `zoo.layers.conv_pool` loads it on first use.
"""

from __future__ import annotations

import functools

import tensorflow as tf


def _padded(inputs, kernel_shape, padding: str):
    """The input with TensorFlow's `same` padding applied (unchanged for `valid`)."""
    if padding == "valid":
        return inputs
    # At stride 1 the padding depends on the kernel only: its size less one, the odd one after.
    pads = [[(k - 1) // 2, k - 1 - (k - 1) // 2] for k in kernel_shape[:2]]
    return tf.pad(inputs, [[0, 0], *pads, [0, 0]])


def _convolution_size(size: int, kernel: int, padding: str) -> int:
    return size if padding == "same" else size - kernel + 1


def _tap(padded, a: int, c: int, i: int, j: int, rows: int, cols: int):
    """The input each output at window position (a, c) multiplies by the kernel's tap (i, j)."""
    return padded[:, a + i : a + i + 2 * rows : 2, c + j : c + j + 2 * cols : 2, :]


def _window_sums(padded, kernel, rows: int, cols: int):
    """The convolution at the four positions of each pooling window: four [batch, rows, cols, filters] maps."""
    kernel_rows, kernel_cols, channels, _ = kernel.shape
    sums = []
    for a in range(2):
        for c in range(2):
            total = None
            for i in range(kernel_rows):
                for j in range(kernel_cols):
                    window = _tap(padded, a, c, i, j, rows, cols)
                    for ch in range(channels):
                        term = window[..., ch : ch + 1] * kernel[i, j, ch]
                        total = term if total is None else total + term
            sums.append(total)
    return sums


def _routed(sums, gradient):
    """`gradient` sent to the first window position holding the maximum, per position."""
    best = functools.reduce(tf.maximum, sums)
    taken = tf.zeros_like(best, dtype=tf.bool)
    routed = []
    for total in sums:
        wins = tf.logical_and(tf.equal(total, best), tf.logical_not(taken))
        taken = tf.logical_or(taken, wins)
        routed.append(tf.where(wins, gradient, tf.zeros_like(gradient)))
    return routed


def _forward(inputs, kernel, bias, padding: str, relu: bool):
    padded = _padded(inputs, kernel.shape, padding)
    rows = _convolution_size(inputs.shape[1], kernel.shape[0], padding) // 2
    cols = _convolution_size(inputs.shape[2], kernel.shape[1], padding) // 2
    pre = functools.reduce(tf.maximum, _window_sums(padded, kernel, rows, cols)) + bias
    return tf.nn.relu(pre) if relu else pre


def _window_gradients(padded, kernel, bias, gradient, relu: bool):
    """The gradient each window position receives, and the gradient of the pre-pooling bias sum.

    The four window sums are computed again rather than kept from the forward
    pass: they cost 2 ms at batch 128, keeping them four pooled-size maps.
    """
    rows, cols = gradient.shape[1], gradient.shape[2]
    sums = _window_sums(padded, kernel, rows, cols)
    if relu:
        best = functools.reduce(tf.maximum, sums)
        gradient = tf.where(best + bias > 0, gradient, tf.zeros_like(gradient))
    return _routed(sums, gradient), gradient


def _parameter_gradients(inputs, kernel, bias, upstream, padding: str, relu: bool):
    """The gradients of the kernel and the bias."""
    padded = _padded(inputs, kernel.shape, padding)
    kernel_rows, kernel_cols, channels, filters = kernel.shape
    rows, cols = upstream.shape[1], upstream.shape[2]
    routed, gradient = _window_gradients(padded, kernel, bias, upstream, relu)
    # Every window position's input slices against its gradients: one product over all of them.
    taps = tf.concat(
        [
            tf.stack(
                [
                    _tap(padded, a, c, i, j, rows, cols)[..., ch]
                    for i in range(kernel_rows)
                    for j in range(kernel_cols)
                    for ch in range(channels)
                ],
                axis=-1,
            )
            for a in range(2)
            for c in range(2)
        ],
        axis=0,
    )
    kernel_gradient = tf.matmul(
        tf.reshape(taps, [-1, kernel_rows * kernel_cols * channels]),
        tf.reshape(tf.concat(routed, axis=0), [-1, filters]),
        transpose_a=True,
    )
    return tf.reshape(kernel_gradient, kernel.shape), tf.reduce_sum(gradient, axis=[0, 1, 2])


def _convolution_output_gradient(inputs, kernel, bias, upstream, padding: str, relu: bool):
    """The gradient of the full-size convolution output: each window position's share at its
    place, zeros in a row or column the pooling dropped."""
    padded = _padded(inputs, kernel.shape, padding)
    rows, cols, filters = upstream.shape[1], upstream.shape[2], kernel.shape[3]
    routed, _ = _window_gradients(padded, kernel, bias, upstream, relu)
    out_rows = _convolution_size(inputs.shape[1], kernel.shape[0], padding)
    out_cols = _convolution_size(inputs.shape[2], kernel.shape[1], padding)
    grid = tf.reshape(tf.stack(routed, axis=3), [-1, rows, cols, 2, 2, filters])
    dense = tf.reshape(tf.transpose(grid, [0, 1, 3, 2, 4, 5]), [-1, 2 * rows, 2 * cols, filters])
    return tf.pad(dense, [[0, 0], [0, out_rows - 2 * rows], [0, out_cols - 2 * cols], [0, 0]])


def conv_pool(inputs, kernel, bias, *, padding: str = "valid", relu: bool = True, gradients: bool = True):
    """`max_pool(activation(conv2d(inputs, kernel) + bias), 2)`, computed at the pooled size.

    Args:
        inputs: [batch, height, width, channels], channels last, static sizes.
        kernel: [rows, cols, channels, filters], Keras' layout.
        bias: [filters] (zeros for a convolution without one).
        padding: "valid" or "same" (TensorFlow's rule), stride 1.
        relu: a ReLU after the bias; False for none.
        gradients: with the written-out backward pass; False for a forward
            pass only (a serving function: a SavedModel would otherwise save
            the backward kernels too).

    Returns:
        [batch, conv height // 2, conv width // 2, filters], what the
        convolution, bias, activation and a 2x2 `valid` max pooling return.
    """

    # New functions per call: each is traced once, in the graph of the call.
    compiled_forward = tf.function(_forward, jit_compile=True)
    if not gradients:
        return compiled_forward(inputs, kernel, bias, padding, relu)
    compiled_parameter_gradients = tf.function(_parameter_gradients, jit_compile=True)
    compiled_output_gradient = tf.function(_convolution_output_gradient, jit_compile=True)

    @tf.custom_gradient
    def fused(inputs, kernel, bias):
        outputs = compiled_forward(inputs, kernel, bias, padding, relu)

        def gradient(upstream):
            kernel_gradient, bias_gradient = compiled_parameter_gradients(inputs, kernel, bias, upstream, padding, relu)
            # Pruned from the graph where nothing reads it, as for a model's image input.
            input_gradient = tf.compat.v1.nn.conv2d_backprop_input(
                tf.shape(inputs),
                kernel,
                compiled_output_gradient(inputs, kernel, bias, upstream, padding, relu),
                strides=[1, 1, 1, 1],
                padding=padding.upper(),
            )
            return input_gradient, kernel_gradient, bias_gradient

        return outputs, gradient

    return fused(inputs, kernel, bias)
