"""What an export needs to know about a model: its inputs, heads and recurrent layers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras

from zoo.core import keys

__all__ = ["ModelSpec", "all_layers", "inspect_model", "non_unrolled_rnns", "resolve_class_names"]

# `padding_mask` and `segment_ids` come with `token_ids` for KerasHub text backbones.
SUPPORTED_INPUTS = (keys.IMAGE, keys.TOKEN_IDS, keys.AUDIO, "padding_mask", "segment_ids")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The serving-relevant facts about a zoo model.

    Attributes:
        image_shape: (H, W, C) of the `image` input (None for unknown dims), or
            None when the model takes no image.
        max_length: the `token_ids` length, or None when the model takes no text.
        heads: output names in model order; a single-output model has one head
            named "probabilities".
        num_classes: classes per head, in the same order.
        multi_output: whether the model returns a dict or list of outputs.
        sample_rate: the rate (Hz) of the `audio` input, read from the model's
            spectrogram layer, or None when the model takes no audio.
    """

    image_shape: tuple[int | None, ...] | None
    max_length: int | None
    heads: tuple[str, ...]
    num_classes: tuple[int, ...]
    multi_output: bool
    sample_rate: int | None = None

    @property
    def has_image(self) -> bool:
        return self.image_shape is not None

    @property
    def has_text(self) -> bool:
        return self.max_length is not None

    @property
    def has_audio(self) -> bool:
        return self.sample_rate is not None


def inspect_model(model, max_length: int | None = None) -> ModelSpec:
    """Reads a functional zoo model's inputs and outputs.

    Args:
        model: a built functional `keras.Model` whose inputs are named `image`,
            `token_ids` and/or `audio` (float32 [batch, None] waveforms).
        max_length: the text length to serve, needed only when the model's
            `token_ids` input has no fixed length; must agree with it otherwise.

    Returns:
        A `ModelSpec`.

    Raises:
        ValueError: for a model that is not a functional Keras model, an input
            other than `image`/`token_ids`/`audio`, an `audio` input of fixed
            length or without a layer declaring its sample rate, outputs that are not [batch, classes]
            probabilities, or a `max_length` that disagrees with the model.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        raise ValueError(
            f"Expected a built functional keras.Model (from zoo.build or keras.Model(inputs, outputs)), "
            f"got {type(model).__name__}."
        )
    names = [t.name for t in model.inputs]
    unknown = [n for n in names if n not in SUPPORTED_INPUTS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(
            f"Cannot export a model with inputs {names}: the serving signatures support inputs named "
            f"{list(SUPPORTED_INPUTS)} (each at most once)."
        )
    image_shape = None
    text_length = None
    sample_rate = None
    for tensor in model.inputs:
        shape = tuple(tensor.shape)
        if tensor.name == keys.AUDIO:
            sample_rate = _audio_sample_rate(model, shape)
        elif tensor.name == keys.IMAGE:
            if len(shape) != 4:
                raise ValueError(f"Input 'image' must be [batch, height, width, channels]; the model has {list(shape)}.")
            image_shape = tuple(shape[1:])
        else:
            if len(shape) != 2:
                raise ValueError(f"Input 'token_ids' must be [batch, length]; the model has {list(shape)}.")
            text_length = shape[1]
    if keys.TOKEN_IDS in names:
        if text_length is None and max_length is None:
            raise ValueError(
                "The model's 'token_ids' input has no fixed length: pass max_length (the length the model was trained with)."
            )
        if text_length is not None and max_length is not None and int(max_length) != text_length:
            raise ValueError(
                f"max_length={max_length!r} disagrees with the model's token_ids length {text_length}; "
                "pass the length the model was built with (or leave max_length unset)."
            )
        text_length = int(text_length if text_length is not None else max_length)
    heads, widths, multi = _heads(model)
    return ModelSpec(image_shape, text_length, heads, widths, multi, sample_rate)


def _audio_sample_rate(model, shape: tuple) -> int:
    """The rate of a model's `audio` input, from the one rate its layers declare (`sampling_rate`)."""
    if len(shape) != 2 or shape[1] is not None:
        raise ValueError(
            f"Input 'audio' must be [batch, None] (waveforms of any length, padded or cropped by the model); "
            f"the model has {list(shape)}."
        )
    rates = {getattr(layer, "sampling_rate", None) for layer in all_layers(model)} - {None}
    if len(rates) != 1 or not all(isinstance(r, int) and r > 0 for r in rates):
        # The signature takes samples, not seconds: serving at a guessed rate would answer wrongly, silently.
        raise ValueError(
            f"Cannot tell the sample rate of the model's 'audio' input: its layers declare sampling_rate "
            f"{sorted(rates)}; expected exactly one positive int (as keras.layers.MelSpectrogram has)."
        )
    return rates.pop()


def _heads(model) -> tuple[tuple[str, ...], tuple[int, ...], bool]:
    output = model.output
    if isinstance(output, dict):
        items = list(output.items())
        multi = True
    elif isinstance(output, list | tuple):
        items = list(zip(model.output_names, output, strict=True))
        multi = True
    else:
        items = [("probabilities", output)]
        multi = False
    heads, widths = [], []
    for name, tensor in items:
        shape = tuple(tensor.shape)
        if len(shape) != 2 or shape[1] is None:
            raise ValueError(
                f"Output {name!r} has shape {list(shape)}: serving expects [batch, num_classes] class probabilities."
            )
        activation = _activation_name(tensor)
        if activation is not None and activation != "softmax":
            raise ValueError(
                f"Output {name!r} ends in a {activation!r} activation, not softmax: the serving signatures return "
                "class probabilities and an argmax label, which fit classification heads only "
                "(build the model with task='classification')."
            )
        heads.append(str(name))
        widths.append(int(shape[1]))
    return tuple(heads), tuple(widths), multi


def _activation_name(tensor) -> str | None:
    """The output activation of the layer that made `tensor`, where it has one."""
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None)
    function = getattr(layer, "activation", None)
    return getattr(function, "__name__", None) if callable(function) else None


def resolve_class_names(spec: ModelSpec, class_names) -> dict[str, list[str]]:
    """Maps each head to its class names.

    Args:
        spec: from `inspect_model`.
        class_names: None; a sequence of strings for the first (or only) head;
            or a dict from head name to a sequence of strings.

    Returns:
        {head: names} for the heads that have names.

    Raises:
        ValueError: for an unknown head, names that are not strings, or a count
            that differs from the head's number of classes.
    """
    if class_names is None:
        return {}
    if isinstance(class_names, dict):
        given = dict(class_names)
    elif isinstance(class_names, Sequence) and not isinstance(class_names, str | bytes):
        given = {spec.heads[0]: class_names}
    else:
        raise ValueError(f"class_names={class_names!r}: expected a list of strings or a dict from head name to list.")
    resolved = {}
    for head, names in given.items():
        if head not in spec.heads:
            raise ValueError(f"class_names names head {head!r}; the model's heads are {list(spec.heads)}.")
        names = list(names)
        if not all(isinstance(n, str) for n in names):
            raise ValueError(f"class_names for {head!r} must be strings; got {names[:5]!r}.")
        width = spec.num_classes[spec.heads.index(head)]
        if len(names) != width:
            raise ValueError(
                f"class_names for {head!r} has {len(names)} entries but the head has {width} classes."
            )
        resolved[head] = names
    return resolved


def non_unrolled_rnns(model) -> list[str]:
    """Names of recurrent layers (LSTM, GRU, ... also inside wrappers) that loop at run time."""
    found = []
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.RNN) and not layer.unroll:
            found.append(layer.name)
    return found


def all_layers(layer) -> list:
    """Every layer inside `layer` (nested models, wrappers, RNN cells), `layer` first."""
    out = []
    stack = [layer]
    seen = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        for attribute in ("layers", "_layers"):
            children = getattr(current, attribute, None)
            if isinstance(children, list | tuple):
                stack.extend(c for c in children if isinstance(c, keras.layers.Layer))
        for attribute in ("layer", "forward_layer", "backward_layer", "cell"):
            child = getattr(current, attribute, None)
            if isinstance(child, keras.layers.Layer):
                stack.append(child)
    return out


def token_id_inputs(spec: ModelSpec) -> dict:
    """The inputs of the ONNX and LiteRT exports (uint8 pixels, int32 token ids): name -> dtype, shape."""
    inputs = {}
    if spec.has_image:
        inputs[keys.IMAGE] = {"dtype": "uint8", "shape": [None, *spec.image_shape], "range": [0, 255]}
    if spec.has_text:
        inputs[keys.TOKEN_IDS] = {"dtype": "int32", "shape": [None, spec.max_length]}
    return inputs


def describe_inputs(inputs: dict) -> str:
    """One line listing input names, dtypes and shapes for TOKENIZE.md."""
    parts = []
    for name, info in inputs.items():
        shape = ", ".join("batch" if d is None else str(d) for d in info["shape"])
        parts.append(f"`{name}` {info['dtype']} [{shape}]")
    return ", ".join(parts)
