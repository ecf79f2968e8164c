"""TensorFlow inference kernels of `PackedLSTM`, for XLA and for ONNX conversion.

Under XLA (`grouped_lstm`), which needs static shapes: the rows are sorted by
length into a few groups, and each group's time loop stops after its longest
text.

For ONNX conversion (`compacted_lstm`): each text's real tokens moved to its
front, a loop without a mask that tf2onnx maps onto ONNX's LSTM operator, and
the outputs read back at the real steps. ONNX Runtime then runs its own LSTM
kernel instead of a loop of small ops: 3.6 times faster at batch 1 for the
seed model, 1.4 times at batch 128.

Both compute what `keras.layers.LSTM` computes with a padding mask: masked
steps leave the state unchanged and repeat the previous output (zeros before
the first real step). Tested against it.

This module imports TensorFlow; `zoo.layers.packed_lstm` loads it on first use.
"""

from __future__ import annotations

import functools

import tensorflow as tf

# Length groups of the inference kernel. Text tower of the seed model under
# XLA, batch 128 (5 interleaved rounds, ms): Keras' LSTM 5.22, 4 groups 3.95,
# 8 groups 4.10, 16 groups 4.99; batch 32: 1.30, 0.94, 1.01, 1.55.
LENGTH_GROUPS = 4
# Fewer rows per group lose more to the loop than the skipped steps save.
MIN_GROUP_ROWS = 8
# Most rows for which a group's step updates the output from the new cell state.
CHAINED_MAX_ROWS = 1


def grouped_lstm(inputs, mask, kernel, recurrent_kernel, bias, *, return_sequences: bool, groups: int = LENGTH_GROUPS):
    """An LSTM forward pass for XLA that stops each group of texts after its longest one.

    XLA needs static shapes, so the packed kernel's shrinking batch is out; instead
    the rows are sorted by where their last real token is, cut into `groups`
    equal groups, and each group's time loop runs only as far as its longest
    text (a loop bound XLA takes at run time). The groups' loops are independent.
    Within a loop, masked steps leave the state unchanged and repeat the
    previous output, as in `keras.layers.LSTM`.

    Args:
        inputs: [B, T, F] with a static T.
        mask: [B, T] bool, or None for no padding.
        kernel, recurrent_kernel, bias: `keras.layers.LSTMCell`'s weights.
        return_sequences: return [B, T, U] instead of the last output [B, U].
        groups: how many length groups to cut the batch into.

    Returns:
        What `keras.layers.LSTM` returns from a zero initial state.
    """
    if mask is None:
        mask = tf.ones(tf.shape(inputs)[:2], tf.bool)
    # Values, not variables: a shared trace holding one model's variables would
    # serve the next model those (deleted) variables.
    weights = [tf.convert_to_tensor(w) for w in (kernel, recurrent_kernel, bias)]
    return _grouped_steps(inputs, mask, *weights, return_sequences, groups)


# Shared like `packed_lstm_tf._forward_steps`: an export traces the model several times (each
# signature, the whole model and its parts), and the loops made a tiny model's
# export take 1.8-2.1 s instead of 0.9-1.2 s when each trace built its own.
@tf.function(autograph=False)
def _grouped_steps(inputs, mask, kernel, recurrent_kernel, bias, return_sequences, groups):
    steps = inputs.shape[1]
    batch = tf.shape(inputs)[0]
    time = tf.range(1, steps + 1)
    ends = tf.reduce_max(tf.where(mask, time[None, :], 0), axis=1)  # one past each text's last real step
    order = tf.argsort(-ends, stable=True)
    inputs, mask, ends = tf.gather(inputs, order), tf.gather(mask, order), tf.gather(ends, order)
    size = tf.maximum((batch + groups - 1) // groups, MIN_GROUP_ROWS)
    outputs = []
    for group in range(groups):
        rows = slice(group * size, (group + 1) * size)
        # A group past the batch's end (a small batch) is empty and runs no step.
        bound = tf.reduce_max(tf.concat([ends[rows], [0]], 0))
        outputs.append(
            _bounded_loop(inputs[rows], mask[rows], bound, kernel, recurrent_kernel, bias, return_sequences)
        )
    return tf.gather(tf.concat(outputs, 0), tf.argsort(order))


def _bounded_loop(inputs, mask, bound, kernel, recurrent_kernel, bias, return_sequences: bool):
    steps, units = inputs.shape[1], recurrent_kernel.shape[0]
    rows = tf.shape(inputs)[0]
    time_major = tf.TensorArray(inputs.dtype, size=steps).unstack(tf.transpose(inputs, [1, 0, 2]))
    mask_major = tf.TensorArray(tf.bool, size=steps).unstack(tf.transpose(mask))
    # One sigmoid over all four gates, the cell gate's as tanh(z) = 2 sigmoid(2z) - 1:
    # XLA then computes the gates in one kernel instead of four. Not in 16-bit floats,
    # where the subtraction loses tanh's precision near 0.
    one_sigmoid = inputs.dtype.size >= 4
    if one_sigmoid:
        gate_scale = tf.constant([1.0] * (2 * units) + [2.0] * units + [1.0] * units, inputs.dtype)
    # Keras' cell order of work: the input product inside the loop. Taking it out
    # as one product over all steps made the loop slower under XLA (6.88 vs 4.70
    # ms for the seed model's text tower at batch 128).

    def step(t, h, c, written, chained):
        z = tf.matmul(time_major.read(t), kernel) + bias + tf.matmul(h, recurrent_kernel)
        if one_sigmoid:
            i, f, g, o = tf.split(tf.sigmoid(z * gate_scale), 4, axis=1)
            g = 2.0 * g - 1.0
        else:
            i, f, g, o = tf.split(z, 4, axis=1)
            i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
        c_next = f * c + i * g
        real = tf.tile(mask_major.read(t)[:, None], [1, units])
        if chained:
            c = tf.where(real, c_next, c)
            h = tf.where(real, o * tf.tanh(c), h)
        else:
            h, c = tf.where(real, o * tf.tanh(c_next), h), tf.where(real, c_next, c)
        if return_sequences:
            written = written.write(t, h)
        return t + 1, h, c, written

    zeros = tf.zeros([rows, units], inputs.dtype)
    written = tf.TensorArray(inputs.dtype, size=steps, element_shape=zeros.shape)

    def loop(chained):
        _, h, _, outputs = tf.while_loop(
            lambda t, *_: t < bound,
            functools.partial(step, chained=chained),
            (0, zeros, zeros, written),
            maximum_iterations=steps,
        )
        return (h, outputs.stack()) if return_sequences else (h,)

    # The new state computed from the new cell state, not beside it, saves a kernel
    # and a copy per step but is slower on more rows (see CHAINED_MAX_ROWS). XLA
    # knows the rows when it compiles and keeps one branch.
    results = tf.cond(rows <= CHAINED_MAX_ROWS, lambda: loop(True), lambda: loop(False))
    if not return_sequences:
        return results[0]
    h, written = results
    # Steps after the loop's bound hold no real token of the group: they repeat the last output.
    ran = tf.range(steps) < bound
    return tf.where(ran[None, :, None], tf.transpose(written, [1, 0, 2]), h[:, None, :])


def compacted_lstm(inputs, mask, kernel, recurrent_kernel, bias, *, return_sequences: bool, go_backwards=False):
    """An LSTM for ONNX conversion: each text's real steps moved to its front, then a plain loop.

    The loop has no mask in it and is the cell tf2onnx recognises, so the ONNX
    graph gets ONNX's own LSTM operator instead of a loop of small ops. Every
    row runs all T steps; the outputs are read back only at the real steps
    (each text's k-th output is the state after its k-th real token), which
    gives what `keras.layers.LSTM` gives with any padding mask.

    Args and returns: as `packed_lstm`; `go_backwards` as Keras' (the texts
    read from the end, the sequence returned in that order).
    """
    steps, units = inputs.shape[1], recurrent_kernel.shape[0]
    time = tf.range(steps)
    if mask is None:
        mask = tf.ones(tf.shape(inputs)[:2], tf.bool)
    if go_backwards:
        inputs, mask = tf.reverse(inputs, [1]), tf.reverse(mask, [1])
    order = tf.argsort(tf.where(mask, time[None, :], time[None, :] + steps), axis=1, stable=True)
    compact = tf.gather(inputs, order, batch_dims=1)
    inputs_ta = tf.TensorArray(inputs.dtype, size=steps).unstack(tf.transpose(compact, [1, 0, 2]))
    zeros = tf.zeros([tf.shape(inputs)[0], units], inputs.dtype)

    # Written op for op as tf2onnx's Keras LSTM pattern expects (tf2onnx.rewriter.rnn_utils).
    def step(t, h, c, outputs_ta):
        z = tf.nn.bias_add(tf.matmul(inputs_ta.read(t), kernel) + tf.matmul(h, recurrent_kernel), bias)
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return t + 1, h, c, outputs_ta.write(t, h)

    outputs_ta = tf.TensorArray(inputs.dtype, size=steps, element_shape=zeros.shape)
    *_, outputs_ta = tf.while_loop(lambda t, *_: t < steps, step, (0, zeros, zeros, outputs_ta))
    outputs = tf.transpose(outputs_ta.stack(), [1, 0, 2])
    count = tf.cumsum(tf.cast(mask, tf.int32), axis=1)  # real steps up to and including each position
    if not return_sequences:
        count = count[:, -1:]
    read = tf.gather(outputs, tf.maximum(count - 1, 0), batch_dims=1)
    read = tf.where((count > 0)[:, :, None], read, tf.zeros_like(read))
    return read if return_sequences else read[:, 0]
