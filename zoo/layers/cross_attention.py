"""Cross-modal attention: text positions attend over image feature-map positions."""

import keras
from keras import ops

from zoo.layers.cost import attention_macs


@keras.saving.register_keras_serializable(package="zoo")
class CrossModalAttention(keras.layers.Layer):
    """Multi-head attention with text as queries and image positions as keys/values.

    Inputs `[text [B, T, D], image [B, P, C]]`; output `[B, T, D]`: each text
    position gets `LayerNorm(text + attention(text, image))`. Padded text
    positions (from the text's Keras mask) are carried as a mask to the output.

    Args:
        num_heads: attention heads (8 by default, as in the seed system).
        key_dim: size of each head's query/key projection.
        dropout: dropout on the attention weights.

    Call arguments:
        return_attention_scores: also return the weights, [B, heads, T, P],
            for plotting which image regions each word looks at.
    """

    def __init__(self, num_heads: int = 8, key_dim: int = 16, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"CrossModalAttention: num_heads={num_heads!r} must be a positive int.")
        if not isinstance(key_dim, int) or key_dim < 1:
            raise ValueError(f"CrossModalAttention: key_dim={key_dim!r} must be a positive int.")
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout = dropout
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"CrossModalAttention takes [text, image]; got {len(input_shape)} inputs.")
        text_shape, image_shape = input_shape
        if len(text_shape) != 3 or len(image_shape) != 3:
            raise ValueError(
                f"CrossModalAttention expects [B, T, D] text and [B, P, C] image inputs; got {text_shape} and {image_shape}."
            )
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, self.key_dim, dropout=self.dropout, dtype=self.dtype_policy, name="attention"
        )
        self.attention.build(text_shape, image_shape)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=self.dtype_policy, name="norm")
        self.norm.build(text_shape)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False):
        text, image = inputs
        text_mask = mask[0] if isinstance(mask, list | tuple) else None
        attention_mask = None
        if text_mask is not None:
            # [B, T, P]: a padded word attends nowhere; its output is masked later.
            attention_mask = ops.broadcast_to(
                ops.cast(text_mask, "bool")[:, :, None], (ops.shape(text)[0], ops.shape(text)[1], ops.shape(image)[1])
            )
        attended, scores = self.attention(
            text, image, attention_mask=attention_mask, training=training, return_attention_scores=True
        )
        output = self.norm(text + attended)
        if return_attention_scores:
            return output, scores
        return output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, list | tuple):
            return mask[0]
        return None

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def compute_output_spec(self, inputs, mask=None, training=None, return_attention_scores=False):
        text, image = inputs
        output = keras.KerasTensor(text.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        scores_shape = (text.shape[0], self.num_heads, text.shape[1], image.shape[1])
        return output, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example."""
        (_, length, text_dim), (_, positions, image_dim) = input_shape
        return attention_macs(length, positions, text_dim, image_dim, self.num_heads, self.key_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "dropout": self.dropout,
        }
