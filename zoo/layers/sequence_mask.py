"""Gives a backbone's sequence output the Keras mask of its padding."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class PaddingMaskedSequence(keras.layers.Layer):
    """Returns `[B, T, D]` sequence features unchanged, masked where `padding_mask` is 0.

    KerasHub text backbones take a `padding_mask` input but return their
    sequence without a Keras mask, so later layers would average or attend
    over padding. Inputs `[sequence, padding_mask]`; the output carries the
    mask, which `CrossModalAttention` and `MaskedGlobalAveragePooling1D` honour.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 2 or len(input_shape[0]) != 3 or len(input_shape[1]) != 2:
            raise ValueError(
                f"PaddingMaskedSequence takes [sequence [B, T, D], padding_mask [B, T]]; got shapes {input_shape}."
            )

    def call(self, inputs, mask=None):
        sequence, _ = inputs
        return sequence

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(ops.cast(inputs[1], "int32"), 0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: 0."""
        return 0
