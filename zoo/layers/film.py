"""FiLM: feature-wise linear modulation (Perez et al., 2018)."""

import keras
from keras import ops

from zoo.layers.cost import dense_macs


@keras.saving.register_keras_serializable(package="zoo")
class FiLM(keras.layers.Layer):
    """Scales and shifts each channel of a feature map by a conditioning vector.

    Inputs `[feature_map [B, H, W, C], condition [B, D]]` give
    `feature_map * (1 + gamma) + beta` with `gamma, beta = Dense(2C)(condition)`.
    The `1 +` keeps the map unchanged at initialisation (the projection starts
    at zero), which trains more stably than a plain `gamma` scale.
    """

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"FiLM takes [feature_map, condition]; got {len(input_shape)} inputs.")
        map_shape, condition_shape = input_shape
        if len(map_shape) < 3:
            raise ValueError(f"FiLM: the feature map needs a channel axis and positions; got shape {map_shape}.")
        self.channels = map_shape[-1]
        self.projection = keras.layers.Dense(
            2 * self.channels, kernel_initializer="zeros", dtype=self.dtype_policy, name="gamma_beta"
        )
        self.projection.build(condition_shape)

    def call(self, inputs):
        feature_map, condition = inputs
        gamma, beta = ops.split(self.projection(condition), 2, axis=-1)
        broadcast = (-1,) + (1,) * (len(feature_map.shape) - 2) + (self.channels,)
        gamma = ops.reshape(gamma, broadcast)
        beta = ops.reshape(beta, broadcast)
        return feature_map * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: the projection plus one per feature-map value."""
        map_shape, condition_shape = input_shape
        values = 1
        for d in map_shape[1:]:
            values *= d
        return dense_macs(1, condition_shape[-1], 2 * map_shape[-1]) + values
