"""Looking inside built models: attention weights for plotting."""

import keras

from zoo.core import keys
from zoo.layers import CrossModalAttention


def attention_scores(model: keras.Model, inputs, layer_name: str | None = None):
    """Returns the cross-modal attention weights of `model` on `inputs`.

    Args:
        model: a model containing a `CrossModalAttention` layer (e.g. `cnn_lstm_xattn`).
        inputs: what the model takes (a dict keyed `image` / `token_ids`).
        layer_name: which attention layer; by default the only one.

    Returns:
        A numpy array [batch, heads, text_length, image_positions]; each row
        over image positions sums to one for a real (non-padding) word.

    Raises:
        ValueError: if the model has no such layer, or several and no name.
    """
    layers = [layer for layer in model.layers if isinstance(layer, CrossModalAttention)]
    if layer_name is not None:
        layers = [layer for layer in layers if layer.name == layer_name]
    if len(layers) != 1:
        found = [layer.name for layer in model.layers if isinstance(layer, CrossModalAttention)]
        raise ValueError(
            f"Expected one CrossModalAttention layer{f' named {layer_name!r}' if layer_name else ''} in "
            f"model {model.name!r}; found {found}."
        )
    layer = layers[0]
    # Run the model up to the layer's inputs, then the layer itself eagerly:
    # the padding mask is rebuilt from the token ids (0 = padding).
    text_and_image = keras.Model(model.input, layer.input)(inputs, training=False)
    token_ids = inputs[keys.TOKEN_IDS] if isinstance(inputs, dict) else None
    mask = None if token_ids is None else [keras.ops.not_equal(token_ids, 0), None]
    _, scores = layer(text_and_image, mask=mask, training=False, return_attention_scores=True)
    return keras.ops.convert_to_numpy(scores)
