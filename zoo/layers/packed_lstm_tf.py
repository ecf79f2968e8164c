"""TensorFlow kernels of `PackedLSTM`: an LSTM over the real steps of each text only.

Training (`packed_lstm`): the rows of a batch are sorted by their number of
real tokens and each text's real tokens moved to its front, so at step `t`
the texts still running are a prefix of the batch: step `t` multiplies `n_t`
rows, not the whole batch (what PyTorch calls packed sequences, and what cuDNN
does with sequence lengths). The input projection, and in the backward pass
the weight and input gradients, are one matrix product over all real steps at
once; only the recurrence stays a loop over time. One tanh gives all four
gates (sigmoid(z) = (tanh(z / 2) + 1) / 2, with the halving folded into the
weights), and the backward pass is written out (`tf.custom_gradient`), its
per-step factors computed during the forward pass off the recurrence's
critical path, so a backward step is a handful of ops instead of the several
dozen automatic differentiation of the per-step graph produces.

Inference under XLA (`grouped_lstm`), which needs static shapes: the rows are
sorted by length into a few groups, and each group's time loop stops after
its longest text.

ONNX conversion (`compacted_lstm`): each text's real tokens moved to its
front, a loop without a mask that tf2onnx maps onto ONNX's LSTM operator,
and the outputs read back at the real steps. ONNX Runtime then runs its own
LSTM kernel instead of a loop of small ops: 3.6 times faster at batch 1 for
the seed model, 1.4 times at batch 128.

All three compute what `keras.layers.LSTM` computes with a padding mask: masked
steps leave the state unchanged and repeat the previous output (zeros before
the first real step). Tested against it: outputs, and for training gradients.

This module imports TensorFlow; `zoo.layers.packed_lstm` loads it on first use.
"""

from __future__ import annotations

import functools

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
    """Where each real step of each text sits in the packed, time-major layout."""

    def __init__(self, mask, steps: int):
        mask_i = tf.cast(mask, tf.int32)
        time = tf.range(steps)
        lengths = tf.reduce_sum(mask_i, axis=1)
        # A text's real tokens first, in order: any mask becomes right padding.
        order = tf.argsort(tf.where(mask, time[None, :], time[None, :] + steps), axis=1, stable=True)
        perm = tf.argsort(-lengths, stable=True)
        self.row_of = tf.argsort(perm)  # original row -> packed row
        sorted_lengths = tf.gather(lengths, perm)
        running = time[:, None] < sorted_lengths[None, :]  # [T, B]: a prefix of rows at each step
        self.sizes = tf.reduce_sum(tf.cast(running, tf.int32), axis=1)
        self.size_list = tf.unstack(self.sizes, num=steps)
        self.offsets = tf.cumsum(self.sizes, exclusive=True)
        packed = tf.cast(tf.where(running), tf.int32)  # [N, 2] (t, packed row), time-major
        source_row = tf.gather(perm, packed[:, 1])
        source_time = tf.gather_nd(order, tf.stack([source_row, packed[:, 0]], axis=1))
        self.source = source_row * steps + source_time  # into inputs reshaped [B * T, F]
        self.count = tf.cumsum(mask_i, axis=1)  # real steps up to and including each position


def packed_lstm(inputs, mask, kernel, recurrent_kernel, bias, *, return_sequences: bool):
    """Runs an LSTM (Keras gate order i, f, c, o) over the unmasked steps only.

    Args:
        inputs: [B, T, F] with a static T.
        mask: [B, T] bool, or None for no padding.
        kernel, recurrent_kernel, bias: the LSTM's weights, shaped as
            `keras.layers.LSTMCell`'s ([F, 4U], [U, 4U], [4U]).
        return_sequences: return [B, T, U] instead of the last output [B, U].

    Returns:
        What `keras.layers.LSTM` returns from a zero initial state.
    """
    if mask is None:
        mask = tf.ones(tf.shape(inputs)[:2], tf.bool)
    context = tf.distribute.get_replica_context()
    # One traced function shared by the replicas of a multi-replica step gave
    # results that differ from one replica's (the first loss of a 2-CPU
    # MirroredStrategy run moved by 1.5e-5, where unshared it is bitwise the
    # same), so each replica there builds its own graph.
    shared = context is None or context.num_replicas_in_sync == 1
    run = _packed_steps if shared else _packed_steps.python_function
    h_packed, offsets, row_of, count = run(inputs, mask, kernel, recurrent_kernel, bias)
    if return_sequences:
        index = tf.gather(offsets, tf.maximum(count - 1, 0)) + row_of[:, None]
        outputs = tf.gather(h_packed, index)
        return tf.where((count > 0)[:, :, None], outputs, tf.zeros_like(outputs))
    lengths = count[:, -1]
    last = tf.gather(h_packed, tf.gather(offsets, tf.maximum(lengths - 1, 0)) + row_of)
    return tf.where((lengths > 0)[:, None], last, tf.zeros_like(last))


# One graph per input signature, shared by every layer and model of the process:
# tracing the unrolled steps and their gradient is the slow part of a first step.
@tf.function(autograph=False)
def _packed_steps(inputs, mask, kernel, recurrent_kernel, bias):
    """The layer's outputs at every real step, packed time-major, and where each text's are."""
    steps, features = inputs.shape[1], inputs.shape[2]
    packing = _Packing(mask, steps)
    x_packed = tf.gather(tf.reshape(inputs, [-1, features]), packing.source)
    h_packed = _recurrence(x_packed, kernel, recurrent_kernel, bias, packing)
    return h_packed, packing.offsets, packing.row_of, packing.count


def _gate_scale(units: int, dtype, sigmoid_gates: float, candidate: float):
    """A per-gate-block vector [a, a, b, a] over the Keras gate order i, f, c, o."""
    values = [tf.fill([2 * units], sigmoid_gates), tf.fill([units], candidate), tf.fill([units], sigmoid_gates)]
    return tf.cast(tf.concat(values, 0), dtype)


def _recurrence(x_packed, kernel, recurrent_kernel, bias, packing: _Packing):
    sizes = packing.size_list
    steps, units = len(sizes), recurrent_kernel.shape[0]

    @tf.custom_gradient
    def run(x_packed, kernel, recurrent_kernel, bias):
        dtype = x_packed.dtype
        # One tanh serves all four gates: sigmoid(z) = (tanh(z / 2) + 1) / 2. On a
        # CPU it took 3% off the text tower's training step against one sigmoid
        # with tanh(z) = 2 sigmoid(2z) - 1 (7 interleaved rounds).
        scale = _gate_scale(units, dtype, 0.5, 1.0)
        projected = tf.split(tf.matmul(x_packed, kernel * scale) + bias * scale, packing.sizes, num=steps)
        recurrent = recurrent_kernel * scale
        h_prev, h_out, factor, through_c, forget = [], [], [], [], []
        slope_scale = _gate_scale(units, dtype, 0.25, 1.0)
        h = c = tf.zeros([sizes[0], units], dtype)
        for t in range(steps):
            h, c = h[: sizes[t]], c[: sizes[t]]
            tanh_z = tf.tanh(projected[t] if t == 0 else projected[t] + tf.matmul(h, recurrent))
            i, f, _, o = tf.split(tanh_z * 0.5 + 0.5, 4, axis=1)
            g = tanh_z[:, 2 * units : 3 * units]
            h_prev.append(h)
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

        def grad(d_h_packed):
            d_h = tf.split(tf.convert_to_tensor(d_h_packed), packing.sizes, num=steps)
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
            d_z = tf.concat(d_z, 0)
            return (
                tf.matmul(d_z, kernel, transpose_b=True),
                tf.matmul(x_packed, d_z, transpose_a=True),
                tf.matmul(tf.concat(h_prev, 0), d_z, transpose_a=True),
                tf.reduce_sum(d_z, 0),
            )

        return tf.concat(h_out, 0), grad

    return run(x_packed, kernel, recurrent_kernel, bias)


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


# Shared like `_packed_steps`: an export traces the model several times (each
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
