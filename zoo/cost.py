"""Multiply-adds per example, counted from a built model's layers.

Counted: Dense, Conv2D, LSTM/GRU (per time step), Bidirectional, MultiHeadAttention
and every zoo layer with a `count_macs(input_shape)` method. Element-wise ops,
pooling, normalisation and activations are a small fraction and are not counted.
"""

import math

import keras

from zoo.layers.cost import attention_macs, dense_macs


def _shape(tensor_or_list):
    if isinstance(tensor_or_list, list | tuple):
        return [tuple(t.shape) for t in tensor_or_list]
    return tuple(tensor_or_list.shape)


def _positions(shape) -> int:
    return math.prod(d for d in shape[1:-1]) if len(shape) > 2 else 1


def layer_macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds per example of one layer call with the given shapes."""
    if hasattr(layer, "count_macs"):
        return int(layer.count_macs(input_shape))
    if isinstance(layer, keras.layers.Dense):
        return dense_macs(_positions(input_shape), input_shape[-1], layer.units)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return _positions(output_shape) * kh * kw * (input_shape[-1] // layer.groups) * layer.filters
    if isinstance(layer, keras.layers.Bidirectional):
        forward = layer_macs(layer.forward_layer, input_shape, output_shape)
        return 2 * forward
    if isinstance(layer, keras.layers.LSTM | keras.layers.GRU):
        gates = 4 if isinstance(layer, keras.layers.LSTM) else 3
        steps = input_shape[1]
        return steps * gates * (input_shape[-1] + layer.units) * layer.units
    if isinstance(layer, keras.layers.MultiHeadAttention):
        query, value = input_shape[0], input_shape[1]
        return attention_macs(query[1], value[1], query[-1], value[-1], layer.num_heads, layer.key_dim)
    return 0


def count_macs(model: keras.Model) -> int:
    """Total multiply-adds to run `model` on one example (batch size 1).

    Raises:
        ValueError: if a counted layer has an unknown (None) time or spatial size.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for node in layer._inbound_nodes:
            # The first positional argument is the layer's input; masks and
            # flags travel as keyword arguments and are not inputs.
            input_shape = _shape(node.arguments.args[0])
            output_shape = _shape(node.output_tensors[0])
            total += layer_macs(layer, input_shape, output_shape)
    return total
