"""Multiply-adds (MACs) per example: the zoo's one counter, and the formulas it uses.

`count_macs(model)` walks a built functional (or Sequential) model and counts
each layer call by, in this order:

1. the layer's own `count_macs(input_shape)` method (every zoo layer has one);
2. a formula for the Keras layers that do the arithmetic: Dense, Conv1D/2D/3D,
   SimpleRNN/LSTM/GRU (per time step), Bidirectional, MultiHeadAttention,
   MelSpectrogram, and nested functional models (KerasHub backbones,
   `keras.applications` CNNs), whose graph is walked again with the shapes of
   the call, since a backbone built for any sequence length records unknown
   lengths in its own graph; and, by class path (so this module never imports
   KerasHub), the KerasHub layers of its text backbones and CLIP encoders
   (`HUB_FORMULAS`);
3. zero for the Keras layers in `ZERO_COST_LAYERS`: data movement, lookups,
   pooling, dropout, activations, normalisation, element-wise merges and
   preprocessing, a small fraction by convention not counted.

Any other layer is refused with a `ValueError`: counting it as zero would
silently understate a model card.
"""

from __future__ import annotations

import math

import keras


def dense_macs(positions: int, in_features: int, out_features: int) -> int:
    """Multiply-adds of a dense projection applied at `positions` positions."""
    return int(positions) * int(in_features) * int(out_features)


def attention_macs(
    query_length: int, key_length: int, query_dim: int, key_dim_in: int, num_heads: int, head_dim: int
) -> int:
    """Multiply-adds of a multi-head attention (projections, scores, weighted sum, output)."""
    inner = num_heads * head_dim
    projections = dense_macs(query_length, query_dim, inner) + 2 * dense_macs(key_length, key_dim_in, inner)
    scores_and_mix = 2 * query_length * key_length * inner
    output = dense_macs(query_length, inner, query_dim)
    return int(projections + scores_and_mix + output)


# Matched by exact class: a subclass may add arithmetic, so it must say its own cost.
ZERO_COST_LAYERS: tuple[type, ...] = (
    keras.layers.InputLayer,
    # Pooling and data movement.
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute, keras.layers.RepeatVector,
    keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D,
    keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
    keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D,
    keras.layers.Identity, keras.layers.Masking,
    # Regularisation (inactive or element-wise at inference).
    keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D, keras.layers.GaussianDropout, keras.layers.GaussianNoise,
    keras.layers.AlphaDropout, keras.layers.ActivityRegularization,
    # Activations and normalisation (element-wise).
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU,
    keras.layers.ELU, keras.layers.Softmax,
    keras.layers.BatchNormalization, keras.layers.LayerNormalization,
    keras.layers.GroupNormalization, keras.layers.UnitNormalization, keras.layers.RMSNormalization,
    keras.layers.Normalization,
    # Lookups and element-wise merges.
    keras.layers.Embedding,
    keras.layers.Concatenate, keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply,
    keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum,
    # Preprocessing.
    keras.layers.Rescaling, keras.layers.Resizing, keras.layers.CenterCrop,
    keras.layers.StringLookup, keras.layers.IntegerLookup, keras.layers.TextVectorization,
    keras.layers.Hashing, keras.layers.CategoryEncoding,
)


def _hub_transformer_encoder(layer, input_shape) -> int:
    """KerasHub TransformerEncoder: self-attention plus a two-layer feed-forward network."""
    length, width = input_shape[1], input_shape[-1]
    head_dim = width // layer.num_heads
    attention = attention_macs(length, length, width, width, layer.num_heads, head_dim)
    return attention + 2 * dense_macs(length, width, layer.intermediate_dim)


def _hub_clip_vision_embedding(layer, input_shape) -> int:
    """KerasHub CLIPVisionEmbedding: the patch convolution (kernel = stride = patch size, no bias)."""
    channels = input_shape[-1] if layer.data_format == "channels_last" else input_shape[1]
    patches = (layer.image_size // layer.patch_size) ** 2
    return dense_macs(patches, layer.patch_size * layer.patch_size * channels, layer.hidden_dim)


def _zero(layer, input_shape) -> int:
    return 0


# KerasHub layers by class path: lookups and element-wise sums cost nothing by
# the convention above; a transformer block has a formula.
HUB_FORMULAS = {
    "keras_hub.src.layers.modeling.transformer_encoder.TransformerEncoder": _hub_transformer_encoder,
    # CLIP's encoder block has the same attention and feed-forward shapes (its own attributes).
    "keras_hub.src.models.clip.clip_layers.CLIPEncoderLayer": _hub_transformer_encoder,
    "keras_hub.src.models.clip.clip_layers.CLIPVisionEmbedding": _hub_clip_vision_embedding,
    "keras_hub.src.layers.modeling.position_embedding.PositionEmbedding": _zero,
    "keras_hub.src.layers.modeling.token_and_position_embedding.TokenAndPositionEmbedding": _zero,
    "keras_hub.src.layers.modeling.reversible_embedding.ReversibleEmbedding": _zero,
}
# Keras's own ReversibleEmbedding is a lookup when called forward, as a backbone's input layer is.
_LOOKUPS = tuple(getattr(keras.layers, name) for name in ("ReversibleEmbedding",) if hasattr(keras.layers, name))

_RNN_GATES = ((keras.layers.LSTM, 4), (keras.layers.GRU, 3), (keras.layers.SimpleRNN, 1))
_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _shape(tensor_or_list):
    if isinstance(tensor_or_list, dict):
        return {key: tuple(value.shape) for key, value in tensor_or_list.items()}
    if isinstance(tensor_or_list, list | tuple):
        return [tuple(t.shape) for t in tensor_or_list]
    return tuple(tensor_or_list.shape)


def _positions(shape) -> int:
    """Positions a per-position op runs at: the product of all axes but batch and features."""
    return math.prod(shape[1:-1]) if len(shape) > 2 else 1


def _conv_macs(layer, input_shape, output_shape) -> int:
    channels_last = layer.data_format == "channels_last"
    in_channels = input_shape[-1] if channels_last else input_shape[1]
    spatial = output_shape[1:-1] if channels_last else output_shape[2:]
    per_position = math.prod(layer.kernel_size) * (in_channels // layer.groups) * layer.filters
    return math.prod(spatial) * per_position


def _unknown(layer) -> ValueError:
    cls = type(layer)
    return ValueError(
        f"count_macs: layer {layer.name!r} of class {cls.__module__}.{cls.__qualname__} has no known "
        "multiply-add count. Give the class a `count_macs(self, input_shape) -> int` method "
        "(multiply-adds per example for inputs of `input_shape`, batch first; return 0 if its "
        "arithmetic is negligible), or add a formula or a zero-cost entry for it in zoo/layers/cost.py."
    )


def layer_macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds per example of one call of `layer`.

    Args:
        layer: a Keras layer.
        input_shape: shape of the call's input, batch first (a list of shapes for
            several inputs; `[query, value]` for MultiHeadAttention).
        output_shape: shape of the call's (first) output, batch first.

    Returns:
        The count as an int.

    Raises:
        ValueError: if the layer's cost is unknown (see the module docstring for
            how to make it known), or its `count_macs` returns a negative value.
    """
    if hasattr(layer, "count_macs"):
        macs = int(layer.count_macs(input_shape))
        if macs < 0:
            raise ValueError(f"count_macs: {type(layer).__name__}.count_macs returned {macs}; expected >= 0.")
        return macs
    if type(layer) in ZERO_COST_LAYERS or type(layer) in _LOOKUPS:
        return 0
    formula = HUB_FORMULAS.get(f"{type(layer).__module__}.{type(layer).__qualname__}")
    if formula is not None:
        return formula(layer, input_shape)
    if isinstance(layer, keras.layers.Dense):
        return dense_macs(_positions(input_shape), input_shape[-1], layer.units)
    if isinstance(layer, _CONVOLUTIONS):
        return _conv_macs(layer, input_shape, output_shape)
    if isinstance(layer, keras.layers.Bidirectional):
        return layer_macs(layer.forward_layer, input_shape, output_shape) + layer_macs(
            layer.backward_layer, input_shape, output_shape
        )
    for rnn_class, gates in _RNN_GATES:
        if isinstance(layer, rnn_class):
            return input_shape[1] * gates * (input_shape[-1] + layer.units) * layer.units
    if isinstance(layer, keras.layers.MelSpectrogram):
        return mel_spectrogram_macs(layer, input_shape, output_shape)
    if isinstance(layer, keras.layers.MultiHeadAttention):
        query, value = input_shape
        return attention_macs(query[1], value[1], query[-1], value[-1], layer.num_heads, layer.key_dim)
    if isinstance(layer, keras.Model):
        return count_macs(layer, input_shape)
    raise _unknown(layer)


def mel_spectrogram_macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds of `keras.layers.MelSpectrogram` per example.

    Per frame: the window, a real FFT counted as (n/2)·log2(n) complex
    multiply-adds of 4 real ones each, the magnitude, and the mel projection
    of the n/2 + 1 frequency bins.
    """
    del input_shape
    frames = output_shape[-1]
    n = layer.fft_length
    bins = n // 2 + 1
    per_frame = n + 4 * (n // 2) * max(1, int(math.log2(n))) + 2 * bins + bins * layer.num_mel_bins
    return int(frames * per_frame)


def _node_input_shape(layer, node):
    if isinstance(layer, keras.layers.MultiHeadAttention):
        # MultiHeadAttention takes (query, value[, key]); value may come by keyword.
        args, kwargs = node.arguments.args, node.arguments.kwargs
        value = args[1] if len(args) > 1 else kwargs["value"]
        return [_shape(args[0]), _shape(value)]
    # The first positional argument is the layer's input; masks and flags
    # travel as keyword arguments and are not inputs.
    return _shape(node.arguments.args[0])


def count_macs(model: keras.Model, input_shape=None) -> int:
    """Total multiply-adds to run `model` on one example (batch size 1).

    Args:
        model: a built functional or Sequential Keras model.
        input_shape: the shapes `model` is called with (a shape, or a list or
            dict of shapes like its inputs), for a model nested in another;
            None = the shapes recorded in its own graph.

    Returns:
        The count as an int, summed over every call of every layer.

    Raises:
        ValueError: if a layer's cost is unknown (the message names the layer,
            its class and how to fix it), or `model` has no layer graph to walk.
    """
    if not _is_graph_model(model):
        raise ValueError(
            f"count_macs: model {model.name!r} ({type(model).__name__}) has no layer graph; "
            "expected a functional or Sequential model built on its inputs."
        )
    if input_shape is not None:
        return _count_with_shapes(model, input_shape)
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue  # its node has no input to read a shape from, and it costs nothing
        for node in layer._inbound_nodes:
            input_shape = _node_input_shape(layer, node)
            output_shape = _shape(node.output_tensors[0])
            total += layer_macs(layer, input_shape, output_shape)
    return total


def _count_with_shapes(model, input_shape) -> int:
    """Walks `model`'s graph again on inputs of `input_shape`, counting each layer call."""
    references = {tensor.name: tensor for tensor in model.inputs}

    def symbolic(shape, reference):
        return keras.KerasTensor(shape, dtype=reference.dtype)

    if isinstance(input_shape, dict):
        inputs = {key: symbolic(shape, references.get(key, model.inputs[0])) for key, shape in input_shape.items()}
    elif isinstance(input_shape, list):
        inputs = [symbolic(shape, reference) for shape, reference in zip(input_shape, model.inputs, strict=True)]
    else:
        inputs = symbolic(input_shape, model.inputs[0])
    total = 0

    def counted(operation):
        def run(*args, **kwargs):
            nonlocal total
            output = operation.compute_output_spec(*args, **kwargs)
            if isinstance(operation, keras.layers.Layer) and not isinstance(operation, keras.layers.InputLayer):
                node = _CallArguments(args, kwargs)
                first = keras.tree.flatten(output)[0]
                total += layer_macs(operation, _node_input_shape(operation, node), tuple(first.shape))
            return output

        return run

    # Keras's own shape inference (Functional.compute_output_spec) walks the
    # graph this way; the walk is the one way to see each call's real shapes.
    model._run_through_graph(model._standardize_inputs(inputs), operation_fn=counted)
    return total


class _CallArguments:
    """The `node.arguments` view of one call, for `_node_input_shape`."""

    def __init__(self, args, kwargs):
        self.arguments = self
        self.args = args
        self.kwargs = kwargs


def _is_graph_model(model) -> bool:
    try:
        return bool(model.inputs)
    except AttributeError:
        return False
