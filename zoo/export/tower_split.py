"""A model cut into one tower per input and a head, so serving can run each part where it is fastest.

On a CPU, XLA's convolutions are slower than TensorFlow's oneDNN kernels once
a batch holds more than a few images, while XLA runs recurrences, fusion
layers and heads faster than TensorFlow's graph executor. So the serving
functions of `zoo.export.signatures` run a large batch in parts: towers with a
convolution as plain TensorFlow graphs, the other towers and the head each
compiled with XLA. The towers do not depend on each other, so TensorFlow runs
them side by side.

This module finds the parts of a functional Keras model; it imports Keras
only, and the parts share the model's layers and weights.
"""

from __future__ import annotations

import dataclasses

import keras

from zoo.core import keys

__all__ = ["Tower", "TowerSplit", "has_convolution", "split_towers"]

_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


@dataclasses.dataclass(frozen=True)
class Tower:
    """The layers of a model that read one input and nothing else.

    Attributes:
        input_name: the model input the tower reads.
        function: [that input] -> the tensors the rest of the model reads
            from the tower (a `keras.Function` over the model's own layers).
        compiled: whether serving compiles it with XLA (all towers but a
            convolutional image tower).
    """

    input_name: str
    function: keras.Function
    compiled: bool


@dataclasses.dataclass(frozen=True)
class TowerSplit:
    """A model cut into one tower per input and the head that joins them.

    Building it changes nothing in the model: every part is a
    `keras.Function` over the model's own layers and weights.

    Attributes:
        towers: the inputs' towers (an input read only by the head has none).
        head: the tensors listed in `head_sources`, in that order -> the
            model's outputs, in the model's output structure.
        head_sources: where each head input comes from: (input name, index
            of the tower's output), or (input name, None) for the raw input.
    """

    towers: tuple[Tower, ...]
    head: keras.Function
    head_sources: tuple[tuple[str, int | None], ...]


def split_towers(model, image_input: str = keys.IMAGE) -> TowerSplit | None:
    """Cuts a functional model into per-input towers and a head.

    An input's tower is every layer call whose inputs all derive from that
    input alone; the head is everything else. The split is only returned when
    the image tower holds a convolution: that tower is the part serving runs
    outside XLA (the gain was measured on image towers; audio towers, whose
    spectrograms XLA compiles, stay compiled).

    Args:
        model: a Keras model.
        image_input: the name of the image input.

    Returns:
        The `TowerSplit`, or None where the model has no such split (not a
        functional model, no image input, or no convolution in its tower).
    """
    if not (isinstance(model, keras.Model) and hasattr(model, "operations") and getattr(model, "inputs", None)):
        return None
    inputs = {tensor.name: tensor for tensor in model.inputs}
    try:
        frontier = _frontier(inputs, keras.tree.flatten(model.output))
    except (AttributeError, RecursionError):  # not a graph of Keras layer calls, or too deep to walk
        return None
    towers, sources = [], []
    for name, tensor in inputs.items():
        outputs = [t for t, origin in frontier if origin == name and t is not tensor]
        if outputs:
            function = keras.Function([tensor], outputs, name=f"{model.name}_{name}_tower")
            convolutional = any(has_convolution(operation) for operation in function.operations)
            towers.append(Tower(name, function, compiled=not (name == image_input and convolutional)))
    if all(tower.compiled for tower in towers):
        return None
    for tensor, origin in frontier:
        if tensor is inputs[origin]:
            sources.append((origin, None))
        else:
            tower = next(t for t in towers if t.input_name == origin)
            sources.append((origin, _index(tower.function.outputs, tensor)))
    head = keras.Function([tensor for tensor, _ in frontier], model.output, name=f"{model.name}_head")
    return TowerSplit(tuple(towers), head, tuple(sources))


def _frontier(inputs: dict, outputs: list) -> list[tuple]:
    """The (tensor, input name) pairs that derive from one input alone and that the head reads."""
    origin: dict[int, str | None] = {id(tensor): name for name, tensor in inputs.items()}

    def single_origin(tensor) -> str | None:
        if id(tensor) not in origin:
            parents = {single_origin(parent) for parent in _parents(tensor)}
            origin[id(tensor)] = parents.pop() if len(parents) == 1 else None
        return origin[id(tensor)]

    frontier, visited = [], set()
    pending = list(outputs)
    while pending:
        tensor = pending.pop()
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        name = single_origin(tensor)
        if name is None:
            pending.extend(_parents(tensor))
        else:
            frontier.append((tensor, name))
    return frontier


def _parents(tensor) -> list:
    """The tensors the layer call that produced `tensor` read (none for a model input)."""
    operation, node_index, _ = tensor._keras_history
    node = operation._inbound_nodes[node_index]
    return [] if node.is_input else list(node.input_tensors)


def _index(tensors: list, tensor) -> int:
    return next(i for i, t in enumerate(tensors) if t is tensor)


def has_convolution(layer) -> bool:
    """Whether a layer, or any layer inside it (a model, a wrapper's `layers`), is a convolution."""
    if isinstance(layer, _CONVOLUTIONS):
        return True
    return any(has_convolution(inner) for inner in getattr(layer, "layers", ()))
