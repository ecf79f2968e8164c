"""Text towers over token ids (0 = padding). The padding mask reaches every layer.

Every layer is named with the tower's prefix (`text_embedding`, `text_lstm1`).
"""

from collections.abc import Sequence

import keras

from zoo.layers import (
    MaskedGlobalAveragePooling1D,
    PackedLSTM,
    SinusoidalPositionEncoding,
    TransformerEncoderBlock,
)


def embed_tokens(token_ids, *, vocab_size: int, embed_dim: int, prefix: str = "text"):
    """Embedding with `mask_zero=True`, so id 0 is padding for every later layer."""
    return keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True, name=f"{prefix}_embedding")(token_ids)


def rnn_sequence(
    embedded,
    *,
    units: Sequence[int] = (128, 128),
    cell: str = "lstm",
    bidirectional: bool = False,
    unroll: bool = False,
    return_sequences: bool = False,
    prefix: str = "text",
):
    """Stacked recurrent layers over masked embeddings.

    Args:
        units: one entry per layer; every layer but the last returns sequences.
        cell: "lstm" or "gru".
        bidirectional: wrap each layer in `Bidirectional` (features double).
        unroll: unroll the time loop; needed by LiteRT without Flex ops, and
            only possible for a fixed text length.
        return_sequences: whether the last layer returns all steps.

    Returns:
        [batch, units[-1]] (or [batch, T, units[-1]]), times 2 if bidirectional.
    """
    layer_class = {"lstm": PackedLSTM, "gru": keras.layers.GRU}[cell]
    x = embedded
    for i, width in enumerate(units, start=1):
        sequences = return_sequences or i < len(units)
        name = f"{prefix}_{cell}{i}"
        if bidirectional:
            x = keras.layers.Bidirectional(
                layer_class(width, return_sequences=sequences, unroll=unroll, name=f"{name}_cell"), name=name
            )(x)
        else:
            x = layer_class(width, return_sequences=sequences, unroll=unroll, name=name)(x)
    return x


def transformer_sequence(
    embedded, *, num_layers: int = 2, num_heads: int = 4, ff_dim: int = 128, dropout: float = 0.0, prefix: str = "text"
):
    """Sinusoidal positions, then `num_layers` masked Transformer encoder blocks."""
    x = SinusoidalPositionEncoding(name=f"{prefix}_positions")(embedded)
    for i in range(1, num_layers + 1):
        x = TransformerEncoderBlock(num_heads, ff_dim, dropout, name=f"{prefix}_encoder{i}")(x)
    return x


def masked_mean(sequence, *, prefix: str = "text"):
    """Mean over the non-padding steps of a sequence."""
    return MaskedGlobalAveragePooling1D(name=f"{prefix}_pool")(sequence)
