"""TensorFlow training kernel of `PackedLSTM`: an LSTM over the real steps of each text only.

The rows of a batch are sorted by their number of real tokens and each text's
real tokens moved to its front, so at step `t` the texts still running are a
prefix of the batch: step `t` multiplies `n_t` rows, not the whole batch (what
PyTorch calls packed sequences, and what cuDNN does with sequence lengths).
The input projection, and in the backward pass the weight and input
gradients, are one matrix product over all real steps at once; only the
recurrence stays a loop over time. One tanh gives all four gates (sigmoid(z) =
(tanh(z / 2) + 1) / 2, with the halving folded into the weights), and the
backward pass is written out (`tf.custom_gradient`), its per-step factors
computed during the forward pass off the recurrence's critical path, so a
backward step is a handful of ops instead of the several dozen automatic
differentiation of the per-step graph produces. Stacked layers hand each
other the packed outputs instead of unpacking and packing again.

It computes what `keras.layers.LSTM` computes with a padding mask: masked
steps leave the state unchanged and repeat the previous output (zeros before
the first real step). Tested against it: outputs and gradients. The inference
kernels (XLA, ONNX) are in `zoo.layers.packed_lstm_inference_tf`.

This module imports TensorFlow; `zoo.layers.packed_lstm` loads it on first use.
"""

from __future__ import annotations

import tensorflow as tf


def accelerator_present() -> bool:
    """Whether TensorFlow sees a GPU (Keras' LSTM then runs cuDNN) or a TPU (the kernels are CPU-tuned)."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def in_xla_context() -> bool | None:
    """Whether the graph being built is compiled by XLA; None when there is no way to tell."""
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return None
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


class _Packing:
    """Where each real step of each text sits in the packed, time-major layout, and back.

    A packed tensor has one row per real step (N in all), time-major, and one
    more, last, that holds zeros: positions before a text's first real step,
    and empty texts, read that row, so an all-empty batch needs no special case.
    """

    def __init__(self, mask, steps: int):
        mask_i = tf.cast(mask, tf.int32)
        time = tf.range(steps)
        lengths = tf.reduce_sum(mask_i, axis=1)
        # A text's real tokens first, in order: any mask becomes right padding.
        order = tf.argsort(tf.where(mask, time[None, :], time[None, :] + steps), axis=1, stable=True)
        perm = tf.argsort(-lengths, stable=True)
        row_of = tf.argsort(perm)  # original row -> packed row
        sorted_lengths = tf.gather(lengths, perm)
        running = time[:, None] < sorted_lengths[None, :]  # [T, B]: a prefix of rows at each step
        self.sizes = tf.reduce_sum(tf.cast(running, tf.int32), axis=1)
        offsets = tf.cumsum(self.sizes, exclusive=True)
        packed = tf.cast(tf.where(running), tf.int32)  # [N, 2] (k, packed row), time-major
        zero_row = tf.shape(packed)[0]
        step_of_row = packed[:, 0]  # each packed row is its text's step k
        self.text_of_row = tf.gather(perm, packed[:, 1])
        time_of_row = tf.gather_nd(order, tf.stack([self.text_of_row, step_of_row], axis=1))
        # Positions in [B * T]: each row's own, and the last one that reads it.
        self.position_of_row = self.text_of_row * steps + time_of_row
        # Where the text's next real step is, or its end: the positions in between
        # are masked and repeat this row's output.
        next_step = tf.minimum(step_of_row + 1, steps - 1)
        next_time = tf.gather_nd(order, tf.stack([self.text_of_row, next_step], axis=1))
        text_lengths = tf.gather(lengths, self.text_of_row)
        next_time = tf.where(step_of_row + 1 < text_lengths, next_time, steps)
        self.last_reader_of_row = self.text_of_row * steps + next_time - 1
        self.is_last_row = step_of_row + 1 == text_lengths
        # The row each position reads: its text's latest real step.
        count = tf.cumsum(mask_i, axis=1)
        latest = tf.gather(offsets, tf.maximum(count - 1, 0)) + row_of[:, None]
        self.row_at = tf.where(count > 0, latest, zero_row)
        self.real_row_at = tf.where(mask, latest, zero_row)  # only where the position is real
        last = tf.gather(offsets, tf.maximum(lengths - 1, 0)) + row_of
        self.last_row = tf.where(lengths > 0, last, zero_row)


# Attribute of a sequence output that holds its packed form, for a `PackedLSTM` stacked on it.
_PACKED_FORM = "_zoo_packed_form"


def packed_lstm(inputs, mask, kernel, recurrent_kernel, bias, *, return_sequences: bool):
    """Runs an LSTM (Keras gate order i, f, c, o) over the unmasked steps only.

    An output sequence carries its packed form, so a layer stacked directly on it
    (same tensor, same mask) reads that instead of packing the sequence again.

    Args:
        inputs: [B, T, F] with a static T.
        mask: [B, T] bool, or None for no padding.
        kernel, recurrent_kernel, bias: the LSTM's weights, shaped as
            `keras.layers.LSTMCell`'s ([F, 4U], [U, 4U], [4U]).
        return_sequences: return [B, T, U] instead of the last output [B, U].

    Returns:
        What `keras.layers.LSTM` returns from a zero initial state.
    """
    below = getattr(inputs, _PACKED_FORM, None)
    if below is not None and below[0] is mask:
        _, packing, x_packed = below
    else:
        packing = _Packing(tf.ones(tf.shape(inputs)[:2], tf.bool) if mask is None else mask, inputs.shape[1])
        x_packed = _pack(inputs, packing)
    context = tf.distribute.get_replica_context()
    # One traced function shared by the replicas of a multi-replica step gave
    # results that differ from one replica's (the first loss of a 2-CPU
    # MirroredStrategy run moved by 1.5e-5, where unshared it is bitwise the
    # same), so each replica there builds its own graph.
    shared = context is None or context.num_replicas_in_sync == 1
    h_packed = _recurrence(x_packed, kernel, recurrent_kernel, bias, packing.sizes, shared=shared)
    if not return_sequences:
        return _last_output(h_packed, packing)
    outputs = _unpack(h_packed, packing)
    try:
        setattr(outputs, _PACKED_FORM, (mask, packing, h_packed))
    except AttributeError:  # a tensor type without attributes: the next layer packs again
        pass
    return outputs


# Between the padded and the packed layout both ways are gathers, and so are
# their gradients: TensorFlow's gradient of a gather is a segment sum, which
# took 0.17-0.34 ms each on the critical path of the seed model's training
# step, where a gather takes tens of microseconds.


def _pack(inputs, packing: _Packing):
    """[B, T, F] -> [N + 1, F]: the real steps, packed time-major, then the zero row."""
    features = inputs.shape[2]

    @tf.custom_gradient
    def pack(inputs):
        rows = tf.gather(tf.reshape(inputs, [-1, features]), packing.position_of_row)

        def grad(d_rows):
            # Each real position is one packed row; padding reads the zero row's
            # gradient, which is zero (nothing reads that row).
            return tf.gather(tf.convert_to_tensor(d_rows), packing.real_row_at)

        return tf.pad(rows, [[0, 1], [0, 0]]), grad

    return pack(inputs)


def _unpack(h_packed, packing: _Packing):
    """[N + 1, U] -> [B, T, U]: each position's output, zeros before a text's first real step."""
    units = h_packed.shape[-1]
    first, last = packing.position_of_row, packing.last_reader_of_row

    @tf.custom_gradient
    def unpack(h_packed):
        def grad(d_outputs):
            d = tf.convert_to_tensor(d_outputs)
            # A row is read at its own position and at the masked ones up to its
            # text's next real step. With sums over what follows each position, a
            # row's share is exact when its text has no gap inside: no subtraction
            # for the trailing padding, none at all for a row read once.
            after = tf.reshape(tf.cumsum(d, axis=1, exclusive=True, reverse=True), [-1, units])
            d = tf.reshape(d, [-1, units])
            rows = tf.gather(d, first) + (tf.gather(after, first) - tf.gather(after, last))
            return tf.pad(rows, [[0, 1], [0, 0]])

        return tf.gather(h_packed, packing.row_at), grad

    return unpack(h_packed)


def _last_output(h_packed, packing: _Packing):
    """[N + 1, U] -> [B, U]: each text's output after its last real step, zeros for an empty text."""

    @tf.custom_gradient
    def last(h_packed):
        def grad(d_outputs):
            d = tf.gather(tf.convert_to_tensor(d_outputs), packing.text_of_row)
            return tf.pad(tf.where(packing.is_last_row[:, None], d, tf.zeros((), d.dtype)), [[0, 1], [0, 0]])

        return tf.gather(h_packed, packing.last_row), grad

    return last(h_packed)


def _gate_scale(units: int, dtype, sigmoid_gates: float, candidate: float):
    """A per-gate-block vector [a, a, b, a] over the Keras gate order i, f, c, o."""
    values = [tf.fill([2 * units], sigmoid_gates), tf.fill([units], candidate), tf.fill([units], sigmoid_gates)]
    return tf.cast(tf.concat(values, 0), dtype)


def _recurrence(x_packed, kernel, recurrent_kernel, bias, sizes, *, shared: bool):
    """The layer's outputs at every real step, packed like `x_packed` (zero row included).

    The two time loops are traced functions shared by every layer (see
    `_forward_steps`); the products for the gradients are ops of the caller's graph.
    """
    forward = _forward_steps if shared else _forward_steps.python_function
    backward = _backward_steps if shared else _backward_steps.python_function

    @tf.custom_gradient
    def run(x_packed, kernel, recurrent_kernel, bias):
        h_packed, h_before, factor, through_c, forget = forward(x_packed, kernel, recurrent_kernel, bias, sizes)

        def grad(d_h_packed):
            d_z = backward(tf.convert_to_tensor(d_h_packed), recurrent_kernel, factor, through_c, forget, sizes)
            return (
                tf.matmul(d_z, kernel, transpose_b=True),
                tf.matmul(x_packed, d_z, transpose_a=True),
                tf.matmul(tf.concat(h_before, 0), d_z, transpose_a=True),
                tf.reduce_sum(d_z, 0),
            )

        return h_packed, grad

    return run(x_packed, kernel, recurrent_kernel, bias)


# One graph per input signature, shared by every layer and model of the process:
# tracing the unrolled steps is the slow part of a first step.
@tf.function(autograph=False)
def _forward_steps(x_packed, kernel, recurrent_kernel, bias, packed_sizes):
    """The forward loop: outputs (zero row included), and what the backward loop needs of each step."""
    steps, units, dtype = packed_sizes.shape[0], recurrent_kernel.shape[0], x_packed.dtype
    sizes = tf.unstack(packed_sizes, num=steps)
    # One tanh serves all four gates: sigmoid(z) = (tanh(z / 2) + 1) / 2. On a
    # CPU it took 3% off the text tower's training step against one sigmoid
    # with tanh(z) = 2 sigmoid(2z) - 1 (7 interleaved rounds).
    scale = _gate_scale(units, dtype, 0.5, 1.0)
    pieces = tf.concat([packed_sizes, [1]], 0)  # the zero row last, which no step reads
    projected = tf.split(tf.matmul(x_packed, kernel * scale) + bias * scale, pieces, num=steps + 1)
    recurrent = recurrent_kernel * scale
    h_before, h_out, factor, through_c, forget = [], [], [], [], []
    slope_scale = _gate_scale(units, dtype, 0.25, 1.0)
    h = c = tf.zeros([sizes[0], units], dtype)
    zero_row = tf.zeros([1, units], dtype)
    for t in range(steps):
        h, c = h[: sizes[t]], c[: sizes[t]]
        tanh_z = tf.tanh(projected[t] if t == 0 else projected[t] + tf.matmul(h, recurrent))
        i, f, _, o = tf.split(tanh_z * 0.5 + 0.5, 4, axis=1)
        g = tanh_z[:, 2 * units : 3 * units]
        h_before.append(h)
        c_before = c
        c = f * c + i * g
        tc = tf.tanh(c)
        h = o * tc
        # For the backward pass, off the recurrence's critical path: d z =
        # d(gate value) * gate'(z), per gate block [c, c, c, h] * factor, with
        # sigmoid'(z) = (1 - tanh(z / 2)^2) / 4 and tanh'(z) = 1 - tanh(z)^2.
        slope = (1.0 - tanh_z * tanh_z) * slope_scale
        factor.append(tf.concat([g, c_before, i, tc], axis=1) * slope)
        through_c.append(o * (1.0 - tc * tc))
        forget.append(f)
        h_out.append(h)
    return tf.concat([*h_out, zero_row], 0), [*h_before, zero_row], factor, through_c, forget


@tf.function(autograph=False)
def _backward_steps(d_h_packed, recurrent_kernel, factor, through_c, forget, packed_sizes):
    """The backward loop: the gradient of each real step's pre-activations, zero row included."""
    steps, units = packed_sizes.shape[0], recurrent_kernel.shape[0]
    sizes = tf.unstack(packed_sizes, num=steps)
    d_h = tf.split(d_h_packed, tf.concat([packed_sizes, [1]], 0), num=steps + 1)[:steps]
    recurrent_t = tf.transpose(recurrent_kernel)
    d_z = [None] * steps
    dh, dc = d_h[-1], None
    for t in reversed(range(steps)):
        if t < steps - 1:
            # Texts that ended at step t join the running ones here.
            rows = [[0, sizes[t] - sizes[t + 1]], [0, 0]]
            dh = tf.pad(dh, rows) + d_h[t]
            dc = tf.pad(dc, rows) + dh * through_c[t]
        else:
            dc = dh * through_c[t]
        d_z[t] = tf.concat([dc, dc, dc, dh], axis=1) * factor[t]
        if t > 0:
            dh = tf.matmul(d_z[t], recurrent_t)
            dc = dc * forget[t]
    # A zero last row: the zero row's gradient is zero, and it adds nothing to the weights'.
    return tf.concat([*d_z, tf.zeros([1, 4 * units], d_h_packed.dtype)], 0)
