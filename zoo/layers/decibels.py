"""Power to decibels, per element (unlike MelSpectrogram's own, which clips by the batch maximum)."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class PowerToDecibels(keras.layers.Layer):
    """y = 10 * log10(max(x, floor)): a power spectrogram in decibels.

    `keras.layers.MelSpectrogram(power_to_db=True)` also floors every value at
    `max(batch) - top_db`, so one example's features depend on the others in
    its batch; this layer looks at each value alone.

    Args:
        floor: the smallest power kept (1e-6 = -60 dB), so silence stays finite.
    """

    def __init__(self, floor: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        if isinstance(floor, bool) or not isinstance(floor, int | float) or not floor > 0:
            raise ValueError(f"PowerToDecibels: floor={floor!r} must be a positive number.")
        self.floor = float(floor)

    def call(self, inputs):
        # log10 in float32 at least: float16 would lose the small powers.
        x = ops.maximum(ops.cast(inputs, "float32"), self.floor)
        return ops.cast(ops.log(x) * (10.0 / math.log(10.0)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self, input_shape) -> int:
        """Zero: an element-wise op, not counted by convention (see zoo.layers.cost)."""
        return 0

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}
