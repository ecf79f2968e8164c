"""Pretrained backbones as towers: KerasHub text and image presets, `keras.applications` CNNs.

A backbone is named by an architecture (a KerasHub preset name such as
`bert_tiny_en_uncased`, or a `keras.applications` name such as `resnet50`)
and built one of three ways, timm's convention:

- `pretrained=False`: random initialisation from the architecture's
  configuration, which this module knows, so nothing is downloaded;
  `config` overrides entries of it (layers, heads, hidden size, vocabulary);
- `pretrained=True`: the published weights through their real download path
  (`keras_hub.models.Backbone.from_preset(name)`, `weights="imagenet"`);
  offline this fails at once with `PretrainedWeightsError`, naming what it
  tried to fetch and how to point at a local copy;
- `pretrained="path"`: local files, a KerasHub preset directory (as
  `save_to_preset` writes) or a `keras.applications` weights file.

KerasHub is imported inside these functions: it imports TensorFlow when it is
installed, and `import zoo` must not.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

import keras

from zoo.layers import BackboneImageAdapter, PaddingMaskedSequence

__all__ = [
    "TEXT_ARCHITECTURES", "IMAGE_ARCHITECTURES", "APPLICATIONS", "WEIGHTS", "PretrainedWeightsError",
    "text_backbone", "image_backbone", "text_tower", "image_tower", "text_input_names", "import_keras_hub",
    "offline_error",
]

TEXT_NAME = "text_backbone"
IMAGE_NAME = "image_backbone"

# Architecture configurations of published KerasHub presets (Turc et al. 2019
# for the BERT sizes), so a randomly initialised backbone needs no download.
_BERT_VOCABULARY = 30522
TEXT_ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    name: ("BertBackbone", dict(vocabulary_size=_BERT_VOCABULARY, num_layers=layers, num_heads=heads,
                                hidden_dim=hidden, intermediate_dim=4 * hidden, max_sequence_length=512))
    for name, layers, heads, hidden in (
        ("bert_tiny_en_uncased", 2, 2, 128),
        ("bert_small_en_uncased", 4, 8, 512),
        ("bert_medium_en_uncased", 8, 8, 512),
        ("bert_base_en_uncased", 12, 12, 768),
    )
}
TEXT_ARCHITECTURES["distil_bert_base_en_uncased"] = (
    "DistilBertBackbone",
    dict(vocabulary_size=_BERT_VOCABULARY, num_layers=6, num_heads=12, hidden_dim=768, intermediate_dim=3072,
         max_sequence_length=512),
)

_RESNET = dict(input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
               stackwise_num_strides=[1, 2, 2, 2], use_pre_activation=False)
# KerasHub image backbones; their ImageNet presets normalise with the ImageNet mean and std ("torch").
IMAGE_ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet_18_imagenet": ("ResNetBackbone", {**_RESNET, "stackwise_num_blocks": [2, 2, 2, 2],
                                              "block_type": "basic_block"}),
    "resnet_50_imagenet": ("ResNetBackbone", {**_RESNET, "stackwise_num_blocks": [3, 4, 6, 3],
                                              "block_type": "bottleneck_block"}),
    # Not a published preset: a two-stage ResNet small enough to train on a CPU (KerasHub
    # requires 64 filters in the stem and the first stage).
    "resnet_tiny": ("ResNetBackbone", dict(input_conv_filters=[64], input_conv_kernel_sizes=[3],
                                           stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
                                           stackwise_num_strides=[1, 2], block_type="basic_block",
                                           use_pre_activation=False)),
}
# keras.applications CNNs: (constructor, its preprocess_input convention).
APPLICATIONS: dict[str, tuple[str, str]] = {
    "resnet50": ("ResNet50", "caffe"), "resnet101": ("ResNet101", "caffe"), "resnet152": ("ResNet152", "caffe"),
    "resnet50v2": ("ResNet50V2", "tf"), "mobilenet_v2": ("MobileNetV2", "tf"), "vgg16": ("VGG16", "caffe"),
    "densenet121": ("DenseNet121", "torch"), "efficientnet_b0": ("EfficientNetB0", "pixels"),
}
# keras.applications refuses inputs under 32x32.
APPLICATIONS_MIN_SIZE = 32
# What `pretrained=True` fetches: licence and download size.
WEIGHTS: dict[str, str] = {
    "bert_tiny_en_uncased": "KerasHub preset, Apache-2.0, 17 MB",
    "bert_small_en_uncased": "KerasHub preset, Apache-2.0, 115 MB",
    "bert_medium_en_uncased": "KerasHub preset, Apache-2.0, 166 MB",
    "bert_base_en_uncased": "KerasHub preset, Apache-2.0, 438 MB",
    "distil_bert_base_en_uncased": "KerasHub preset, Apache-2.0, 266 MB",
    "resnet_18_imagenet": "KerasHub preset, Apache-2.0, 45 MB",
    "resnet_50_imagenet": "KerasHub preset, Apache-2.0, 95 MB",
    "resnet_tiny": "none published: random initialisation, or a local preset the user trained",
    "resnet50": "keras.applications ImageNet weights (no top), MIT, 94 MB",
    "resnet101": "keras.applications ImageNet weights (no top), MIT, 171 MB",
    "resnet152": "keras.applications ImageNet weights (no top), MIT, 234 MB",
    "resnet50v2": "keras.applications ImageNet weights (no top), MIT, 94 MB",
    "mobilenet_v2": "keras.applications ImageNet weights (no top), Apache-2.0, 9 MB",
    "vgg16": "keras.applications ImageNet weights (no top), CC-BY-4.0, 59 MB",
    "densenet121": "keras.applications ImageNet weights (no top), BSD-3-Clause, 29 MB",
    "efficientnet_b0": "keras.applications ImageNet weights (no top), Apache-2.0, 16 MB",
}


class PretrainedWeightsError(RuntimeError):
    """Published weights could not be fetched (offline) or local ones could not be read."""


def import_keras_hub():
    """Imports KerasHub, or raises ImportError saying how to install it."""
    try:
        return importlib.import_module("keras_hub")
    except ImportError as error:
        raise ImportError(
            "Pretrained towers need KerasHub, which is not installed: pip install 'zoo[hub]' "
            "(keras-hub and tensorflow-text)."
        ) from error


def _check_pretrained(pretrained, what: str) -> None:
    if isinstance(pretrained, bool):
        return
    if not isinstance(pretrained, str) or not os.path.exists(pretrained):
        raise ValueError(
            f"{what}={pretrained!r}: expected True, False or the path of an existing local preset directory "
            "or weights file."
        )


def offline_error(what: str, error: Exception, local_hint: str) -> PretrainedWeightsError:
    """The error for published weights that could not be fetched: what, why, and how to use a local copy."""
    return PretrainedWeightsError(
        f"Could not fetch the published weights {what} ({type(error).__name__}: {str(error)[:300]}). "
        f"Without network access, point at a local copy instead: {local_hint}"
    )


def text_backbone(name: str, *, config: Mapping[str, Any] | None = None, pretrained: bool | str = False):
    """A KerasHub text backbone named `text_backbone`.

    Args:
        name: a key of `TEXT_ARCHITECTURES` (a KerasHub preset name).
        config: overrides of the architecture's configuration (random init only).
        pretrained: False, True (download the preset `name`) or a local preset directory.

    Returns:
        The backbone, a functional `keras.Model`.

    Raises:
        ValueError: an unknown name or config key, or a missing local path.
        PretrainedWeightsError: `pretrained=True` and the preset cannot be fetched.
        ImportError: KerasHub is not installed.
    """
    _check_pretrained(pretrained, "text_pretrained")
    hub = import_keras_hub()
    if isinstance(pretrained, str):
        return hub.models.Backbone.from_preset(pretrained, name=TEXT_NAME)
    if name not in TEXT_ARCHITECTURES:
        raise ValueError(f"Unknown text backbone {name!r}; expected one of {sorted(TEXT_ARCHITECTURES)}.")
    if pretrained:
        try:
            return hub.models.Backbone.from_preset(name, name=TEXT_NAME)
        except (OSError, ValueError, RuntimeError) as error:
            raise offline_error(
                f"of KerasHub preset {name!r} (from Kaggle, kaggle://keras/...)", error,
                f"on a connected machine run keras_hub.models.Backbone.from_preset({name!r}).save_to_preset(DIR) "
                "and keras_hub.models.Tokenizer.from_preset(...).save_to_preset(DIR), copy DIR here and pass "
                "text_pretrained=DIR (or set KAGGLEHUB_CACHE to a cache that holds it).",
            ) from error
    class_name, architecture = TEXT_ARCHITECTURES[name]
    return getattr(hub.models, class_name)(**_merged(architecture, config, name), name=TEXT_NAME)


def image_backbone(name: str, *, image_size: int, config: Mapping[str, Any] | None = None,
                   pretrained: bool | str = False):
    """An image backbone named `image_backbone` and its preprocessing mode.

    Args:
        name: a key of `APPLICATIONS` (keras.applications) or `IMAGE_ARCHITECTURES` (KerasHub).
        image_size: the square input side the backbone runs at.
        config: overrides of a KerasHub architecture's configuration (random init only).
        pretrained: False, True (download) or a local preset directory / weights file.

    Returns:
        `(backbone, mode)`; `mode` is a `BackboneImageAdapter` mode.

    Raises:
        ValueError: an unknown name, a config for a keras.applications CNN, or a missing path.
        PretrainedWeightsError: `pretrained=True` and the weights cannot be fetched.
    """
    _check_pretrained(pretrained, "image_pretrained")
    shape = (image_size, image_size, 3)
    if name in APPLICATIONS:
        if config:
            raise ValueError(f"image_config={dict(config)!r}: keras.applications backbone {name!r} takes no config.")
        constructor, mode = APPLICATIONS[name]
        weights = "imagenet" if pretrained is True else (pretrained or None)
        application = getattr(keras.applications, constructor)
        try:
            return application(include_top=False, weights=weights, input_shape=shape, name=IMAGE_NAME), mode
        except Exception as error:  # keras.utils.get_file raises a bare Exception on fetch failures
            if pretrained is not True:
                raise
            raise offline_error(
                f"of keras.applications.{constructor} (ImageNet, from storage.googleapis.com)", error,
                f"copy the file into ~/.keras/models/ (Keras looks there first) or pass image_pretrained=PATH "
                f"of the .h5 weights file of {constructor} without its top.",
            ) from error
    hub = import_keras_hub()
    if isinstance(pretrained, str):
        return hub.models.Backbone.from_preset(pretrained, name=IMAGE_NAME, image_shape=shape), "torch"
    if name not in IMAGE_ARCHITECTURES:
        raise ValueError(
            f"Unknown image backbone {name!r}; expected one of {sorted(APPLICATIONS) + sorted(IMAGE_ARCHITECTURES)}."
        )
    if pretrained:
        try:
            return hub.models.Backbone.from_preset(name, name=IMAGE_NAME, image_shape=shape), "torch"
        except (OSError, ValueError, RuntimeError) as error:
            raise offline_error(
                f"of KerasHub preset {name!r} (from Kaggle)", error,
                f"save it with keras_hub.models.Backbone.from_preset({name!r}).save_to_preset(DIR) on a "
                "connected machine and pass image_pretrained=DIR.",
            ) from error
    class_name, architecture = IMAGE_ARCHITECTURES[name]
    backbone = getattr(hub.models, class_name)(**_merged(architecture, config, name), image_shape=shape, name=IMAGE_NAME)
    return backbone, "torch"


def _merged(architecture: Mapping[str, Any], config: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    unknown = sorted(set(config or {}) - set(architecture))
    if unknown:
        raise ValueError(f"Unknown config keys {unknown} for backbone {name!r}; expected some of {sorted(architecture)}.")
    merged = {**architecture, **dict(config or {})}
    # JSON and the registry hand sequences over as tuples; KerasHub's configs are lists.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in merged.items()}


def text_input_names(backbone) -> list[str]:
    """The inputs a text backbone takes (`token_ids`, `padding_mask`, `segment_ids` where it has them)."""
    return sorted(tensor.name for tensor in backbone.inputs)


def text_tower(backbone, max_length: int):
    """Model inputs for `backbone` and its pooled vector and masked sequence.

    The pooled vector is the backbone's own (BERT's `[CLS]` projection) or,
    for backbones without one (DistilBERT), the masked mean of the sequence.

    Returns:
        `(inputs, pooled [B, D], sequence [B, T, D] carrying the padding mask)`.
    """
    from zoo.layers import MaskedGlobalAveragePooling1D

    inputs = {name: keras.Input((max_length,), dtype="int32", name=name) for name in text_input_names(backbone)}
    outputs = backbone(inputs)
    raw_sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    sequence = PaddingMaskedSequence(name="text_sequence")([raw_sequence, inputs["padding_mask"]])
    if isinstance(outputs, dict) and "pooled_output" in outputs:
        pooled = outputs["pooled_output"]
    else:
        pooled = MaskedGlobalAveragePooling1D(name="text_pool")(sequence)
    return inputs, pooled, sequence


def image_tower(images, backbone, mode: str):
    """Adapts `images` to `backbone` and runs it.

    Returns:
        `(pooled [B, C], feature map [B, H', W', C])`.
    """
    height, width, channels = backbone.inputs[0].shape[1:]
    adapted = BackboneImageAdapter(height, width, channels, mode, name="image_adapter")(images)
    feature_map = backbone(adapted)
    pooled = keras.layers.GlobalAveragePooling2D(name="image_gap")(feature_map)
    return pooled, feature_map
