"""Fixed sinusoidal position encoding (Vaswani et al., 2017)."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Adds sin/cos position signals to [batch, time, features] embeddings.

    It has no weights, so a model built for one text length runs at another
    with the same weights, and padding at the end changes nothing before it.

    Args:
        max_wavelength: the longest wavelength of the signal.
    """

    def __init__(self, max_wavelength: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        if max_wavelength <= 1:
            raise ValueError(f"max_wavelength={max_wavelength!r}: expected a number > 1.")
        self.max_wavelength = max_wavelength
        self.supports_masking = True

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        depth = inputs.shape[-1]
        positions = ops.cast(ops.arange(length), "float32")[:, None]
        frequencies = ops.exp(
            ops.cast(ops.arange(0, depth, 2), "float32") * (-math.log(self.max_wavelength) / depth)
        )[None, :]
        angles = positions * frequencies
        encoding = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (length, -1))
        encoding = encoding[:, :depth]
        return inputs + ops.cast(encoding[None], inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: 0, adding a fixed signal is element-wise (see zoo.layers.cost)."""
        return 0
