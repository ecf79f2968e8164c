"""Weighted-sum fusion: F = sum_i w_i * f_i."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class WeightedSumFusion(keras.layers.Layer):
    """Mixes same-shaped modality features by a weighted sum.

    With `learned=False` and two inputs the result is C = alpha*A + (1 - alpha)*B.
    With `learned=True` the weights are softmax(w) of one trainable logit per
    input, starting equal, so they stay positive and sum to one.

    Args:
        alpha: weight of the first input when not learned, in [0, 1].
        learned: learn the mixing weights instead of fixing them.

    Example:

    >>> fused = WeightedSumFusion(alpha=0.7)([image_features, text_features])
    """

    def __init__(self, alpha: float = 0.5, learned: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"WeightedSumFusion: alpha={alpha!r} must be within [0, 1].")
        self.alpha = float(alpha)
        self.learned = bool(learned)

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2 or any(s[1:] != shapes[0][1:] for s in shapes):
            raise ValueError(f"WeightedSumFusion needs two or more inputs of one shape; got shapes {shapes}.")
        if not self.learned and len(shapes) != 2:
            raise ValueError(f"WeightedSumFusion with a fixed alpha mixes exactly two inputs; got {len(shapes)}.")
        if self.learned:
            self.mixing_logits = self.add_weight(
                name="mixing_logits", shape=(len(shapes),), initializer="zeros", trainable=True
            )

    def mixing_weights(self):
        """The current weight of each input, as a tensor summing to one."""
        if self.learned:
            return ops.softmax(self.mixing_logits)
        return ops.convert_to_tensor([self.alpha, 1.0 - self.alpha])

    def call(self, inputs):
        weights = ops.cast(self.mixing_weights(), inputs[0].dtype)
        return sum(weights[i] * x for i, x in enumerate(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: 0, a weighted sum is element-wise (see zoo.layers.cost)."""
        return 0

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "learned": self.learned}
