"""Pieces the model families share: hyperparameter declarations, inputs, checks, heads."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Literal

import keras

from zoo.core import keys
from zoo.registry import require
from zoo.towers import image as image_towers
from zoo.towers import text as text_towers


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One tunable argument of a builder: its name, type and default."""

    name: str
    annotation: Any
    default: Any


def declare(*hyperparameters: Hyperparameter):
    """Gives a `**hp` builder an explicit keyword signature the registry can read.

    Families share groups of hyperparameters (image tower, text tower, head);
    declaring the groups once keeps every variant's signature consistent.
    """
    names = [h.name for h in hyperparameters]
    if len(set(names)) != len(names):
        raise ValueError(f"Duplicate hyperparameter names in {names}.")

    def decorator(function):
        @functools.wraps(function)
        def builder(**hp):
            return function(**hp)

        builder.__signature__ = inspect.Signature(
            [inspect.Parameter(h.name, inspect.Parameter.KEYWORD_ONLY, default=h.default, annotation=h.annotation)
             for h in hyperparameters]
        )
        builder.__annotations__ = {h.name: h.annotation for h in hyperparameters}
        return builder

    return decorator


H = Hyperparameter

IMAGE_INPUT = (H("image_shape", tuple[int, int, int], (28, 28, 1)),)
CNN_TOWER = (
    H("conv_filters", tuple[int, ...], (32, 64)),
    H("kernel_size", int, 3),
    H("pool_size", int, 2),
    H("batch_norm", bool, False),
    H("image_dropout", float, 0.0),
    H("image_units", int, 128),
)
TEXT_INPUT = (H("vocab_size", int, 1000), H("max_length", int, 32))
RNN_TOWER = (
    H("embed_dim", int, 128),
    H("rnn_units", tuple[int, ...], (128, 128)),
    H("rnn_cell", Literal["lstm", "gru"], "lstm"),
    H("bidirectional", bool, False),
    H("unroll", bool, False),
)
CLASSES = (H("num_classes", int, 10),)
HEAD = (
    H("head_units", int, 128),
    H("head_dropout", float, 0.2),
    H("task", Literal["classification", "multilabel", "regression"], "classification"),
)


def image_input(image_shape):
    """The `image` input: float32 pixels scaled to [0, 1]."""
    return keras.Input(shape=tuple(image_shape), dtype="float32", name=keys.IMAGE)


def token_input(max_length):
    """The `token_ids` input: int32 ids, 0 = padding."""
    return keras.Input(shape=(max_length,), dtype="int32", name=keys.TOKEN_IDS)


def check(hp: dict[str, Any]) -> None:
    """Validates the shared hyperparameters present in `hp` (`ValueError` on the first bad one)."""
    positive_ints = [
        "kernel_size", "pool_size", "image_units", "embed_dim", "max_length", "head_units",
        "gate_units", "num_heads", "attention_dim", "num_layers", "ff_dim", "blocks_per_stage",
    ]
    for key in positive_ints:
        if key in hp:
            require(hp[key] >= 1, key, hp[key], "an integer >= 1")
    for key in ("conv_filters", "rnn_units", "widths"):
        if key in hp:
            require(len(hp[key]) >= 1 and all(v >= 1 for v in hp[key]), key, hp[key], "a non-empty sequence of integers >= 1")
    if "image_shape" in hp:
        require(all(d >= 1 for d in hp["image_shape"]), "image_shape", hp["image_shape"], "(height, width, channels), all >= 1")
    if "conv_filters" in hp and "image_shape" in hp:
        side = min(hp["image_shape"][:2])
        for _ in hp["conv_filters"]:
            side = (side - hp["kernel_size"] + 1) // hp["pool_size"]
        require(
            side >= 1, "image_shape", hp["image_shape"],
            f"an image large enough for {len(hp['conv_filters'])} conv({hp['kernel_size']}) + pool({hp['pool_size']}) stages",
        )
    if "vocab_size" in hp:
        require(hp["vocab_size"] >= 3, "vocab_size", hp["vocab_size"], "an integer >= 3 (padding, [UNK] and at least one word)")
    if "num_classes" in hp:
        require(hp["num_classes"] >= 1, "num_classes", hp["num_classes"], "an integer >= 1")
        if hp.get("task") == "classification":
            require(hp["num_classes"] >= 2, "num_classes", hp["num_classes"], "an integer >= 2 for classification")
    for key in ("image_dropout", "head_dropout", "dropout"):
        if key in hp:
            require(0.0 <= hp[key] < 1.0, key, hp[key], "a rate in [0, 1)")
    if "alpha" in hp:
        require(0.0 <= hp["alpha"] <= 1.0, "alpha", hp["alpha"], "a weight in [0, 1]")
    if "attention_dim" in hp and "num_heads" in hp:
        require(
            hp["attention_dim"] % hp["num_heads"] == 0, "attention_dim", hp["attention_dim"],
            f"a multiple of num_heads={hp['num_heads']}",
        )
    if "embed_dim" in hp and "num_heads" in hp and "num_layers" in hp:
        require(
            hp["embed_dim"] % hp["num_heads"] == 0, "embed_dim", hp["embed_dim"],
            f"a multiple of num_heads={hp['num_heads']}",
        )
    if hp.get("unroll") and "max_length" in hp:
        require(hp["max_length"] <= 256, "max_length", hp["max_length"], "at most 256 when unroll=True")


def output_layer(logits, task: str, name: str = "head_probabilities"):
    """Turns logits into the model output: softmax, sigmoid, or identity for regression.

    The output layer computes in float32 so mixed-precision training stays stable.
    """
    activation = {"classification": "softmax", "multilabel": "sigmoid", "regression": "linear"}[task]
    if task == "regression":
        name = "head_output"
    return keras.layers.Activation(activation, dtype="float32", name=name)(logits)


def head_logits(features, *, num_classes: int, head_units: int, head_dropout: float, prefix: str = "head"):
    """Hidden ReLU layer -> dropout -> logits.

    The hidden layer lets the head express interactions between modalities
    (e.g. "is the digit in the image even?"), which a linear layer over
    fused features cannot.
    """
    x = keras.layers.Dense(head_units, activation="relu", name=f"{prefix}_hidden")(features)
    if head_dropout:
        x = keras.layers.Dropout(head_dropout, name=f"{prefix}_dropout")(x)
    return keras.layers.Dense(num_classes, name=f"{prefix}_logits")(x)


def head(features, *, num_classes: int, head_units: int, head_dropout: float, task: str, prefix: str = "head"):
    """`head_logits` followed by the output activation for `task`."""
    logits = head_logits(
        features, num_classes=num_classes, head_units=head_units, head_dropout=head_dropout, prefix=prefix
    )
    return output_layer(logits, task, name=f"{prefix}_probabilities")


def loss_for(task: str) -> str:
    """The matching Keras loss name for a head's `task`."""
    return {
        "classification": "sparse_categorical_crossentropy",
        "multilabel": "binary_crossentropy",
        "regression": "mean_squared_error",
    }[task]


def image_map(images, hp):
    """The CNN tower's feature map from a model's resolved hyperparameters."""
    return image_towers.cnn_feature_map(
        images,
        filters=hp["conv_filters"],
        kernel_size=hp["kernel_size"],
        pool_size=hp["pool_size"],
        batch_norm=hp["batch_norm"],
    )


def image_vector(images, hp):
    """The CNN tower's feature vector from a model's resolved hyperparameters."""
    return image_towers.flatten_features(image_map(images, hp), units=hp["image_units"], dropout=hp["image_dropout"])


def text_features(token_ids, hp, *, return_sequences=False):
    """The recurrent text tower (embedding + RNN) from a model's resolved hyperparameters."""
    embedded = text_towers.embed_tokens(token_ids, vocab_size=hp["vocab_size"], embed_dim=hp["embed_dim"])
    return text_towers.rnn_sequence(
        embedded,
        units=hp["rnn_units"],
        cell=hp["rnn_cell"],
        bidirectional=hp["bidirectional"],
        unroll=hp["unroll"],
        return_sequences=return_sequences,
    )
