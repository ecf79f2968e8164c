"""Average over time steps that are not padding."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class MaskedGlobalAveragePooling1D(keras.layers.Layer):
    """Mean over the time axis of [batch, time, features], skipping masked steps.

    A fully masked sequence (an empty text) gives zeros, not NaN.

    Example:

    >>> pooled = MaskedGlobalAveragePooling1D()(sequence)  # mask taken from `sequence`
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.cast(ops.expand_dims(mask, -1), inputs.dtype)
        total = ops.sum(inputs * weights, axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1.0, inputs.dtype))
        return total / count

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: 0, pooling is not counted (see zoo.layers.cost)."""
        return 0
