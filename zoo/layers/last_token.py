"""The feature vector at each text's last real token (CLIP's text pooling, for the zoo's word ids)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class LastTokenPooling(keras.layers.Layer):
    """Picks `sequence[b, t_b]`, where `t_b` is the last position whose token id is not 0 (padding).

    CLIP pools its causal text encoder at the end-of-text token, found as the
    largest id of its BPE vocabulary; the zoo's word ids have no such token,
    so the last real word stands in for it. Under causal attention that
    position is the only one that has read the whole text, and padding after
    it can change nothing before it, so the pooled vector ignores padding.
    A text of padding only pools position 0.

    Call arguments:
        inputs: `[sequence [B, T, D], token_ids [B, T]]`.

    Returns:
        `[B, D]`.

    Example:

    >>> pooled = LastTokenPooling()([encoder(token_ids), token_ids])
    """

    def build(self, input_shape):
        if len(input_shape) != 2 or len(input_shape[0]) != 3 or len(input_shape[1]) != 2:
            raise ValueError(
                f"LastTokenPooling takes [sequence [B, T, D], token_ids [B, T]]; got shapes {input_shape}."
            )

    def call(self, inputs):
        sequence, token_ids = inputs
        positions = ops.arange(ops.shape(token_ids)[1], dtype="int32")
        real = ops.not_equal(ops.cast(token_ids, "int32"), 0)
        last = ops.max(ops.where(real, ops.expand_dims(positions, 0), 0), axis=1)
        picked = ops.take_along_axis(sequence, ops.reshape(last, (-1, 1, 1)), axis=1)
        return ops.squeeze(picked, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][2])

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: 0, a gather (see zoo.layers.cost)."""
        return 0
