"""Fixed-length waveforms: pad or crop raw audio to a set number of samples, in the graph."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class FixedLengthWaveform(keras.layers.Layer):
    """Pads with zeros at the end, or crops the end, so every waveform has `num_samples` samples.

    Input `[B, T]` float waveforms of any length T (unknown in the graph is
    fine); output `[B, num_samples]`. The start of a recording is kept: FSDD's
    recordings are trimmed to the spoken digit, which starts at once. Because
    zeros appended to a waveform before this layer give the same output,
    batches padded to their longest recording (tf.data's `padded_batch`) and
    single recordings give the same features.

    Args:
        num_samples: samples kept (8,000 = one second at 8 kHz).
    """

    def __init__(self, num_samples: int = 8000, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"FixedLengthWaveform: num_samples={num_samples!r} must be a positive int.")
        self.num_samples = num_samples

    def call(self, inputs):
        # Padding by num_samples first makes every input at least that long, so
        # one static crop serves short and long inputs without a shape branch.
        padded = ops.pad(inputs, [[0, 0], [0, self.num_samples]])
        return padded[:, : self.num_samples]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_samples)

    def count_macs(self, input_shape) -> int:
        """Zero: padding and cropping move data only."""
        return 0

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples}
