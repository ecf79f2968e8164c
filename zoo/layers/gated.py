"""Gated fusion (the gated multimodal unit of Arevalo et al., 2017)."""

import keras
from keras import ops

from zoo.layers.cost import dense_macs


@keras.saving.register_keras_serializable(package="zoo")
class GatedFusion(keras.layers.Layer):
    """h = z * tanh(W_a a) + (1 - z) * tanh(W_b b), z = sigmoid(W_z [a; b]).

    The gate z decides per feature and per example how much each modality
    contributes.

    Args:
        units: size of the fused feature.
    """

    def __init__(self, units: int = 128, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"GatedFusion: units={units!r} must be a positive int.")
        self.units = units

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"GatedFusion takes exactly two inputs; got {len(input_shape)}.")
        shape_a, shape_b = input_shape
        self.project_a = keras.layers.Dense(self.units, activation="tanh", dtype=self.dtype_policy, name="project_a")
        self.project_b = keras.layers.Dense(self.units, activation="tanh", dtype=self.dtype_policy, name="project_b")
        self.gate = keras.layers.Dense(self.units, activation="sigmoid", dtype=self.dtype_policy, name="gate")
        self.project_a.build(shape_a)
        self.project_b.build(shape_b)
        self.gate.build((shape_a[0], shape_a[-1] + shape_b[-1]))

    def call(self, inputs):
        a, b = inputs
        z = self.gate(ops.concatenate([a, b], axis=-1))
        return z * self.project_a(a) + (1.0 - z) * self.project_b(b)

    def gate_values(self, inputs):
        """The gate z for `inputs` (1 = all first modality, 0 = all second)."""
        return self.gate(ops.concatenate(list(inputs), axis=-1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.units)

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example."""
        a, b = input_shape[0][-1], input_shape[1][-1]
        return dense_macs(1, a, self.units) + dense_macs(1, b, self.units) + dense_macs(1, a + b, self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
