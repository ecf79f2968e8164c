"""Late fusion: average the per-modality logits."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class LateFusion(keras.layers.Layer):
    """Averages same-shaped logits from several unimodal heads.

    Each modality is classified on its own; the decision is their mean. It
    cannot learn interactions between modalities, which is what makes it a
    useful baseline against early fusion.
    """

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2 or any(s[1:] != shapes[0][1:] for s in shapes):
            raise ValueError(f"LateFusion needs two or more inputs of one shape; got shapes {shapes}.")

    def call(self, inputs):
        return ops.mean(ops.stack(list(inputs), axis=0), axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: 0, an element-wise mean is not counted (see zoo.layers.cost)."""
        return 0
