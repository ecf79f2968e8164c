"""A pre-norm Transformer encoder block that honours the padding mask."""

import keras

from zoo.layers.cost import attention_macs, dense_macs


@keras.saving.register_keras_serializable(package="zoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """Self-attention plus feed-forward, each with a residual connection.

    Padded positions neither attend nor are attended to, so their content does
    not reach real tokens.

    Args:
        num_heads: attention heads; the feature size must divide by it.
        ff_dim: hidden size of the feed-forward part.
        dropout: dropout rate on attention weights and residual branches.
    """

    def __init__(self, num_heads: int = 4, ff_dim: int = 128, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        if features % self.num_heads:
            raise ValueError(
                f"TransformerEncoderBlock: feature size {features} is not divisible by num_heads={self.num_heads}."
            )
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=self.dtype_policy, name="attention_norm"
        )
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, features // self.num_heads, dropout=self.dropout, dtype=self.dtype_policy, name="attention"
        )
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=self.dtype_policy, name="ff_norm")
        self.ff_inner = keras.layers.Dense(self.ff_dim, activation="gelu", dtype=self.dtype_policy, name="ff_inner")
        self.ff_outer = keras.layers.Dense(features, dtype=self.dtype_policy, name="ff_outer")
        self.residual_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.ff_norm.build(input_shape)
        self.ff_inner.build(input_shape)
        self.ff_outer.build((*input_shape[:-1], self.ff_dim))

    def call(self, inputs, mask=None, training=None):
        attention_mask = None
        if mask is not None:
            mask = keras.ops.cast(mask, "bool")
            attention_mask = keras.ops.logical_and(mask[:, :, None], mask[:, None, :])
        normed = self.attention_norm(inputs)
        attended = self.attention(normed, normed, attention_mask=attention_mask, training=training)
        x = inputs + self.residual_dropout(attended, training=training)
        feed_forward = self.ff_outer(self.ff_inner(self.ff_norm(x)))
        return x + self.residual_dropout(feed_forward, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example for an input of `input_shape` (batch first)."""
        length, features = input_shape[1], input_shape[2]
        return attention_macs(length, length, features, features, self.num_heads, features // self.num_heads) + (
            dense_macs(length, features, self.ff_dim) + dense_macs(length, self.ff_dim, features)
        )

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "ff_dim": self.ff_dim, "dropout": self.dropout}
