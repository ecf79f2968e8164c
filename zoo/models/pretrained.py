"""Pretrained towers: the BERT + ResNet50 seed system and fusions over KerasHub backbones.

Weights follow timm's convention: `zoo.build(name)` initialises randomly and
never touches the network; `pretrained=True` loads the published weights of
both towers (`text_pretrained` / `image_pretrained` for one of them);
`pretrained="DIR"` loads local KerasHub presets from `DIR/text` and
`DIR/image` (see `save_tower_presets`), and `pretrained="FILE.weights.h5"`
the weights of the whole model.

Text comes in as the backbone's own inputs (`token_ids`, `padding_mask` and,
for BERT, `segment_ids`), made by the backbone's tokenizer in the tf.data
pipeline (`zoo.data.hub_text`) and in the SavedModel's serving signature.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import keras

from zoo.core import keys
from zoo.layers import CrossModalAttention, GatedFusion
from zoo.models import common
from zoo.models.common import CLASSES, IMAGE_INPUT, H, declare
from zoo.registry import register_model, require
from zoo.towers import image as image_towers
from zoo.towers import pretrained as hub
from zoo.towers import text as text_towers

__all__ = ["save_tower_presets", "resolve_pretrained"]

_MODALITIES = ("image", "text")


def _towers(text_backbone: str, image_backbone: str, image_size: int, max_length: int = 32):
    return (
        H("max_length", int, max_length),
        H("text_backbone", str, text_backbone),
        H("text_config", dict, {}),
        H("text_pretrained", bool | str, False),
        *IMAGE_INPUT,
        H("image_backbone", str, image_backbone),
        H("image_size", int, image_size),
        H("image_config", dict, {}),
        H("image_pretrained", bool | str, False),
        H("pretrained", bool | str, False),
    )


_HEAD = (
    H("head_units", int, 128),
    H("head_dropout", float, 0.1),
    H("task", Literal["classification", "multilabel", "regression"], "classification"),
)


def _weights_card(text_backbone: str, image_backbone: str) -> dict[str, str]:
    return {"text": hub.WEIGHTS[text_backbone], "image": hub.WEIGHTS[image_backbone]}


def check(hp: dict[str, Any]) -> None:
    """Validates the pretrained-tower hyperparameters without building or downloading anything."""
    common.check(hp)
    text_names = sorted(hub.TEXT_ARCHITECTURES)
    image_names = sorted(hub.APPLICATIONS) + sorted(hub.IMAGE_ARCHITECTURES)
    require(hp["text_backbone"] in hub.TEXT_ARCHITECTURES, "text_backbone", hp["text_backbone"], f"one of {text_names}")
    require(hp["image_backbone"] in image_names, "image_backbone", hp["image_backbone"], f"one of {image_names}")
    minimum = hub.APPLICATIONS_MIN_SIZE if hp["image_backbone"] in hub.APPLICATIONS else 8
    require(hp["image_size"] >= minimum, "image_size", hp["image_size"], f"an integer >= {minimum} for {hp['image_backbone']}")
    for key in ("text_pretrained", "image_pretrained", "pretrained"):
        value = hp[key]
        require(isinstance(value, bool) or os.path.exists(value), key, value,
                "True, False or the path of an existing local preset directory or weights file")
    text_source, image_source = resolve_pretrained(hp)
    for part, source in (("text", text_source), ("image", image_source)):
        # A preset brings its own architecture; a config would be silently ignored.
        require(not (source and hp[f"{part}_config"]), f"{part}_config", hp[f"{part}_config"],
                f"{{}} when the {part} tower loads weights ({source!r}): a config is for random initialisation")
    if not isinstance(text_source, str):
        _, architecture = hub.TEXT_ARCHITECTURES[hp["text_backbone"]]
        unknown = sorted(set(hp["text_config"]) - set(architecture))
        require(not unknown, "text_config", hp["text_config"], f"keys among {sorted(architecture)}")
        length = {**architecture, **hp["text_config"]}["max_sequence_length"]
        require(hp["max_length"] <= length, "max_length", hp["max_length"], f"at most the backbone's {length} positions")
    if hp["image_backbone"] in hub.IMAGE_ARCHITECTURES and not isinstance(image_source, str):
        _, architecture = hub.IMAGE_ARCHITECTURES[hp["image_backbone"]]
        unknown = sorted(set(hp["image_config"]) - set(architecture))
        require(not unknown, "image_config", hp["image_config"], f"keys among {sorted(architecture)}")
    if hp["image_backbone"] in hub.APPLICATIONS:
        require(not hp["image_config"], "image_config", hp["image_config"], "{} for a keras.applications backbone")


def resolve_pretrained(hp: dict[str, Any]) -> tuple[bool | str, bool | str]:
    """The (text, image) weights source a model's hyperparameters ask for.

    A tower's own `*_pretrained` wins; otherwise `pretrained=True` means the
    published weights and a directory means its `text/` and `image/` presets.
    A weights file applies to the whole model after it is built (False here).
    """
    whole = hp["pretrained"]
    text, image = hp["text_pretrained"], hp["image_pretrained"]
    if isinstance(whole, str) and os.path.isdir(whole):
        text = text or os.path.join(whole, "text")
        image = image or os.path.join(whole, "image")
    elif whole is True:
        text, image = text or True, image or True
    return text, image


def save_tower_presets(model: keras.Model, directory: str | os.PathLike, *, tokenizer=None) -> str:
    """Saves a model's KerasHub towers as presets under `directory/text` and `directory/image`.

    Such a directory is what `pretrained="DIR"` loads.

    Args:
        model: a model of this family with KerasHub backbones.
        directory: where to write; created if missing.
        tokenizer: the text backbone's KerasHub tokenizer, saved with it.

    Returns:
        The directory.

    Raises:
        ValueError: a tower is not a KerasHub backbone (keras.applications CNNs have no presets).
    """
    directory = os.fspath(directory)
    for part, layer_name in (("text", hub.TEXT_NAME), ("image", hub.IMAGE_NAME)):
        backbone = model.get_layer(layer_name)
        if not hasattr(backbone, "save_to_preset"):
            raise ValueError(f"The {part} tower {type(backbone).__name__} is not a KerasHub backbone; it has no preset.")
        backbone.save_to_preset(os.path.join(directory, part))
    if tokenizer is not None:
        tokenizer.save_to_preset(os.path.join(directory, "text"))
    return directory


def _build(hp, name: str, fuse) -> keras.Model:
    text_source, image_source = resolve_pretrained(hp)
    text_backbone = hub.text_backbone(hp["text_backbone"], config=hp["text_config"], pretrained=text_source)
    image_backbone, mode = hub.image_backbone(
        hp["image_backbone"], image_size=hp["image_size"], config=hp["image_config"], pretrained=image_source
    )
    images = common.image_input(hp["image_shape"])
    text_inputs, text_pooled, text_sequence = hub.text_tower(text_backbone, hp["max_length"])
    image_pooled, feature_map = hub.image_tower(images, image_backbone, mode)
    fused = fuse(hp, text_pooled, text_sequence, image_pooled, feature_map)
    probabilities = common.head(
        fused, num_classes=hp["num_classes"], head_units=hp["head_units"], head_dropout=hp["head_dropout"], task=hp["task"]
    )
    model = keras.Model({keys.IMAGE: images, **text_inputs}, probabilities, name=name)
    if isinstance(hp["pretrained"], str) and os.path.isfile(hp["pretrained"]):
        model.load_weights(hp["pretrained"])
    return model


def _concat(hp, text_pooled, text_sequence, image_pooled, feature_map):
    return keras.layers.Concatenate(name="fusion_concat")([text_pooled, image_pooled])


def _gated(hp, text_pooled, text_sequence, image_pooled, feature_map):
    return GatedFusion(hp["gate_units"], name="fusion_gated")([image_pooled, text_pooled])


def _cross_attention(hp, text_pooled, text_sequence, image_pooled, feature_map):
    positions = image_towers.feature_map_positions(feature_map)
    attended = CrossModalAttention(
        hp["num_heads"], hp["attention_dim"] // hp["num_heads"], 0.0, name="fusion_attention"
    )([text_sequence, positions])
    return text_towers.masked_mean(attended, prefix="fusion")


@register_model(
    "bert_resnet50_concat",
    origin="Seed system 6: BERT-base pooled (768) + ResNet50 pooled (2048) -> Concatenate -> Dense(512, relu) -> head.",
    modalities=_MODALITIES,
    fusion="concat",
    check=check,
    weights=_weights_card("bert_base_en_uncased", "resnet50"),
)
@declare(*_towers("bert_base_en_uncased", "resnet50", 224), *CLASSES,
         H("head_units", int, 512), H("head_dropout", float, 0.0), _HEAD[2])
def bert_resnet50_concat(**hp):
    """The seed system exactly: BERT-base and ResNet50 features concatenated, a 512-unit hidden layer, a head.

    Images (28x28x1 by default) are repeated to RGB, resized to `image_size`
    and preprocessed as ResNet50 expects, inside the model.
    """
    return _build(hp, "bert_resnet50_concat", _concat)


@register_model(
    "bert_resnet_concat_tiny",
    origin="Seed system 6 at CPU size: BERT-tiny-sized text and a two-stage KerasHub ResNet at 32x32.",
    modalities=_MODALITIES,
    fusion="concat",
    check=check,
    weights=_weights_card("bert_tiny_en_uncased", "resnet_tiny"),
)
@declare(*_towers("bert_tiny_en_uncased", "resnet_tiny", 32), *CLASSES, *_HEAD)
def bert_resnet_concat_tiny(**hp):
    """Pooled BERT and ResNet features concatenated, then a hidden-layer head; small enough for a CPU."""
    return _build(hp, "bert_resnet_concat_tiny", _concat)


@register_model(
    "bert_resnet_gated_tiny",
    origin="Gated multimodal unit (Arevalo et al., 2017) over pretrained-style BERT and ResNet towers.",
    modalities=_MODALITIES,
    fusion="gated",
    check=check,
    weights=_weights_card("bert_tiny_en_uncased", "resnet_tiny"),
)
@declare(*_towers("bert_tiny_en_uncased", "resnet_tiny", 32), H("gate_units", int, 128), *CLASSES, *_HEAD)
def bert_resnet_gated_tiny(**hp):
    """A learned per-feature gate between the pooled BERT and ResNet features."""
    return _build(hp, "bert_resnet_gated_tiny", _gated)


@register_model(
    "bert_resnet_xattn_tiny",
    origin="Seed system 5 on pretrained towers: BERT's token states attend over the ResNet feature map (8 heads).",
    modalities=_MODALITIES,
    fusion="attention",
    check=check,
    weights=_weights_card("bert_tiny_en_uncased", "resnet_tiny"),
)
@declare(*_towers("bert_tiny_en_uncased", "resnet_tiny", 32), H("num_heads", int, 8), H("attention_dim", int, 128),
         *CLASSES, *_HEAD)
def bert_resnet_xattn_tiny(**hp):
    """Each BERT token attends over the ResNet's 4x4 positions; the mean over real tokens feeds the head."""
    return _build(hp, "bert_resnet_xattn_tiny", _cross_attention)
