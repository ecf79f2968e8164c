"""`keras.layers.LSTM` that, on a CPU with TensorFlow, skips the padding after each text when it trains and under XLA."""

import contextlib
import contextvars
import functools

import keras

_FOR_ONNX = contextvars.ContextVar("zoo_packed_lstm_for_onnx", default=False)


@contextlib.contextmanager
def tracing_for_onnx():
    """Within it, `PackedLSTM` traces the loop tf2onnx converts to ONNX's LSTM operator.

    `zoo.export.onnx` traces its model under it; nothing else should.
    """
    token = _FOR_ONNX.set(True)
    try:
        yield
    finally:
        _FOR_ONNX.reset(token)


# Longest text the kernel unrolls: its graph, and the time to build it before
# the first step, grow with the length (2.8 s at 64 steps on 2 cores).
MAX_PACKED_STEPS = 64


@keras.saving.register_keras_serializable(package="zoo")
class PackedLSTM(keras.layers.LSTM):
    """A `keras.layers.LSTM` whose CPU training step and XLA inference skip the padding.

    Same arguments, weights, config and results as `keras.layers.LSTM`. Under
    TensorFlow without a GPU it runs a kernel of `zoo.layers.packed_lstm_tf`
    (training) or `zoo.layers.packed_lstm_inference_tf`:

    - training: each text's steps after its last real token are not computed
      at all (on texts padded to twice their mean length this halves the
      work), the backward pass is written out by hand, and a layer stacked
      directly on another takes its outputs in their packed form;
    - inference inside an XLA-compiled function (the zoo's SavedModel
      serving): the batch is sorted into length groups and each group's time
      loop stops after its longest text;
    - inference traced for ONNX (`tracing_for_onnx`, the zoo's ONNX export):
      each text's real tokens are moved to its front and a loop without a
      mask runs, which tf2onnx turns into ONNX's own LSTM operator.

    Masked steps still leave the state unchanged, as Keras' masking defines them.

    Everywhere else it is `keras.layers.LSTM` unchanged: other inference outside
    XLA, GPUs (cuDNN), TPUs,
    JAX and PyTorch, XLA-compiled training steps, and the configurations the
    kernels do not cover (dropout while training, `stateful`, `return_state`,
    an initial state, other activations, no bias, a text length unknown; and
    except for ONNX, `go_backwards` and texts over `MAX_PACKED_STEPS`).

    Example:

    >>> layer = PackedLSTM(128, return_sequences=True)
    """

    def call(self, sequences, initial_state=None, mask=None, training=False):
        kernel = self._kernel(sequences, training) if initial_state is None else None
        if kernel is not None:
            if isinstance(mask, (list, tuple)):
                mask = mask[0]
            cell = self.cell
            outputs = kernel(
                sequences, mask, cell.kernel.value, cell.recurrent_kernel.value, cell.bias.value,
                return_sequences=self.return_sequences,
            )
            return keras.ops.cast(outputs, self.compute_dtype)
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def _kernel(self, sequences, training):
        """The `packed_lstm_tf` kernel for this call, or None for Keras' own LSTM."""
        if keras.backend.backend() != "tensorflow":
            return None
        cell = self.cell
        plain = (
            not (self.stateful or self.return_state)
            and cell.use_bias
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and sequences.shape[1] is not None
        )
        if not plain:
            return None
        from zoo.layers import packed_lstm_inference_tf, packed_lstm_tf

        if _FOR_ONNX.get() and training is not True:
            # A loop, not unrolled: any length. Backwards is forwards over the reversed texts.
            return functools.partial(packed_lstm_inference_tf.compacted_lstm, go_backwards=self.go_backwards)
        if self.go_backwards or sequences.shape[1] > MAX_PACKED_STEPS or packed_lstm_tf.accelerator_present():
            return None
        in_xla = packed_lstm_tf.in_xla_context()
        if training is True and in_xla is False and not (cell.dropout or cell.recurrent_dropout):
            return packed_lstm_tf.packed_lstm
        if training is not True and in_xla:
            return packed_lstm_inference_tf.grouped_lstm
        return None
