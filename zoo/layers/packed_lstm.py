"""`keras.layers.LSTM` that, when training on a CPU with TensorFlow, computes only the real steps of each text."""

import keras

# Longest text the kernel unrolls: its graph, and the time to build it before
# the first step, grow with the length (2.8 s at 64 steps on 2 cores).
MAX_PACKED_STEPS = 64


@keras.saving.register_keras_serializable(package="zoo")
class PackedLSTM(keras.layers.LSTM):
    """A `keras.layers.LSTM` whose CPU training step skips the padding.

    Same arguments, weights, config and results as `keras.layers.LSTM`. When
    it trains under TensorFlow without a GPU, it runs the kernel of
    `zoo.layers.packed_lstm_tf`: each text's steps after its last real token
    are not computed at all (on texts padded to twice their mean length this
    halves the work), and the backward pass is written out by hand. Masked
    steps still leave the state unchanged, as Keras' masking defines them.

    Everywhere else it is `keras.layers.LSTM` unchanged: inference (so XLA and
    the ONNX and LiteRT converters see Keras' own graph), GPUs (cuDNN), JAX and
    PyTorch, XLA-compiled training steps, and the configurations the kernel
    does not cover (dropout, `go_backwards`, `stateful`, `return_state`, an
    initial state, other activations, no bias, a text length unknown or over
    `MAX_PACKED_STEPS`).

    Example:

    >>> layer = PackedLSTM(128, return_sequences=True)
    """

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if initial_state is None and self._runs_packed(sequences, training):
            from zoo.layers import packed_lstm_tf

            if isinstance(mask, (list, tuple)):
                mask = mask[0]
            cell = self.cell
            outputs = packed_lstm_tf.packed_lstm(
                sequences, mask, cell.kernel.value, cell.recurrent_kernel.value, cell.bias.value,
                return_sequences=self.return_sequences,
            )
            return keras.ops.cast(outputs, self.compute_dtype)
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def _runs_packed(self, sequences, training) -> bool:
        if training is not True or keras.backend.backend() != "tensorflow":
            return False
        cell = self.cell
        plain = (
            not (self.stateful or self.return_state or self.go_backwards)
            and cell.use_bias
            and not cell.dropout
            and not cell.recurrent_dropout
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and sequences.shape[1] is not None
            and sequences.shape[1] <= MAX_PACKED_STEPS
        )
        if not plain:
            return False
        from zoo.layers import packed_lstm_tf

        return not packed_lstm_tf.keras_lstm_preferred()

