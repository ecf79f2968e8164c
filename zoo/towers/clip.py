"""KerasHub's CLIP encoders as the towers of a dual encoder: a small configuration, or a CLIP preset.

`clip_encoders` returns KerasHub's vision encoder (`CLIPVisionEncoder`, a ViT)
named `image_backbone` and its text encoder (`CLIPTextEncoder`, a causal
Transformer) named `text_backbone`, built one of timm's three ways:

- `pretrained=False`: random initialisation from `VISION_ARCHITECTURE` and
  `TEXT_ARCHITECTURE` with the caller's overrides; nothing is downloaded;
- `pretrained=True`: a published CLIP preset through KerasHub's own download
  path (`keras_hub.models.CLIPBackbone.from_preset`); offline this fails at
  once with `PretrainedWeightsError`, naming what it tried to fetch;
- `pretrained="DIR"`: a local CLIP preset directory (what
  `CLIPBackbone.save_to_preset` writes).

A preset brings its own architecture. Its vision encoder loads whole. Its
text encoder loads whole when its vocabulary has `vocab_size` entries (a
preset trained on the zoo's word vocabulary); otherwise all but the word
embeddings load and those start random, since the rows of CLIP's 49,408
byte-pair tokens mean nothing for the zoo's word ids. CLIP's own projections
and temperature are not used: the dual encoder has its own projections and
`ContrastiveHead`.

`image_tower` and `text_tower` pool the encoders as CLIP does: the image's
class token, and the text at its last real token (see `LastTokenPooling`).

KerasHub is imported inside these functions: `import zoo` imports no TensorFlow.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import keras

from zoo.layers import BackboneImageAdapter, LastTokenPooling
from zoo.towers.pretrained import IMAGE_NAME, TEXT_NAME, import_keras_hub, offline_error

__all__ = [
    "VISION_ARCHITECTURE", "TEXT_ARCHITECTURE", "PRESETS", "DEFAULT_PRESET", "WEIGHTS",
    "clip_encoders", "load_preset", "image_tower", "text_tower",
]

# The random-initialisation configuration: a ViT over 4x4 patches of the
# 28x28 digit (49 patches and a class token) and a text Transformer of the
# same width, small enough to train on two CPU cores. `image_size` is the side
# the adapter resizes images to; the rest are KerasHub's constructor arguments.
VISION_ARCHITECTURE: dict[str, int] = {
    "image_size": 28, "patch_size": 4, "hidden_dim": 64, "num_layers": 2, "num_heads": 4, "intermediate_dim": 128,
}
# CLIP's 77 positions, so the weights do not depend on the model's `max_length`.
TEXT_ARCHITECTURE: dict[str, int] = {
    "hidden_dim": 64, "num_layers": 2, "num_heads": 4, "intermediate_dim": 128, "max_sequence_length": 77,
}
# KerasHub's published CLIP presets (keras_hub.models.CLIPBackbone.presets): OpenAI's and OpenCLIP's.
PRESETS = (
    "clip_vit_base_patch16", "clip_vit_base_patch32", "clip_vit_large_patch14", "clip_vit_large_patch14_336",
    "clip_vit_b_32_laion2b_s34b_b79k", "clip_vit_h_14_laion2b_s32b_b79k", "clip_vit_g_14_laion2b_s12b_b42k",
    "clip_vit_bigg_14_laion2b_39b_b160k",
)
DEFAULT_PRESET = "clip_vit_base_patch16"
# What `pretrained=True` loads from the default preset, by tower (the model card's `weights`).
WEIGHTS: dict[str, str] = {
    "image": f"KerasHub preset {DEFAULT_PRESET} (OpenAI CLIP ViT-B/16 at 224x224, MIT licence; 149.6 M "
             "parameters, about 600 MB with its text encoder): the whole vision encoder",
    "text": "the same preset's text Transformer and positions; not its word embeddings, since CLIP's 49,408 "
            "byte-pair tokens are not the zoo's word ids (they load only from a preset whose vocabulary has "
            "vocab_size entries). Projections and temperature always start fresh",
}


def _vision_encoder(hub, config: Mapping[str, Any]):
    side = config["image_size"]
    arguments = {k: v for k, v in config.items() if k != "image_size"}
    encoder = hub.models.CLIPVisionEncoder(**arguments, image_shape=(side, side, 3), name=IMAGE_NAME)
    # KerasHub (0.32) creates the patch positions' ids as zeros and only its checkpoint converters
    # set them to 0..N, so a fresh encoder would give every patch the same position embedding and
    # see the image as a bag of patches. A preset's ids load with its weights, as it was trained.
    embedding = encoder.embedding
    positions = keras.ops.arange(embedding.num_positions, dtype=embedding.position_ids.dtype)
    embedding.position_ids.assign(keras.ops.expand_dims(positions, 0))
    return encoder


def _text_encoder(hub, config: Mapping[str, Any], vocab_size: int):
    # CLIP's residual stream has one width: the embedding is as wide as the blocks.
    return hub.models.CLIPTextEncoder(vocabulary_size=vocab_size, embedding_dim=config["hidden_dim"], **config,
                                      name=TEXT_NAME)


def load_preset(source: bool | str, preset: str = DEFAULT_PRESET):
    """A `keras_hub.models.CLIPBackbone` from a local preset directory or, for `source=True`, `preset`.

    Raises:
        PretrainedWeightsError: `source=True` and the preset cannot be fetched.
        ValueError: a local directory that does not hold a CLIP preset.
    """
    hub = import_keras_hub()
    if isinstance(source, str):
        return hub.models.CLIPBackbone.from_preset(source)
    try:
        return hub.models.CLIPBackbone.from_preset(preset)
    except (OSError, ValueError, RuntimeError) as error:
        raise offline_error(
            f"of KerasHub preset {preset!r} (from Kaggle, kaggle://keras/clip/keras/{preset})", error,
            f"on a connected machine run keras_hub.models.CLIPBackbone.from_preset({preset!r}).save_to_preset(DIR), "
            "copy DIR here and pass pretrained=DIR (or set KAGGLEHUB_CACHE to a cache that holds it).",
        ) from error


def _rebuilt(encoder, name: str, **changes):
    # The preset's encoder under the zoo's layer name; a single output (no intermediate one).
    config = {**encoder.get_config(), "name": name, "intermediate_output_index": None, **changes}
    return type(encoder).from_config(config)


def _copy_weights(source, target) -> list[str]:
    """Copies `source`'s weights into `target` (same architecture) where shapes agree; returns those skipped."""
    if len(source.weights) != len(target.weights):
        raise ValueError(f"Cannot copy {source.name!r} into {target.name!r}: {len(source.weights)} weights "
                         f"against {len(target.weights)}.")
    skipped = []
    for theirs, ours in zip(source.weights, target.weights, strict=True):
        if tuple(theirs.shape) == tuple(ours.shape):
            ours.assign(theirs.value)
        else:
            skipped.append(ours.path)
    return skipped


def _from_preset(backbone, vocab_size: int, max_length: int, source: str):
    text = backbone.text_encoder
    if text.max_sequence_length < max_length:
        raise ValueError(f"max_length={max_length}: expected at most the {text.max_sequence_length} positions of the "
                         f"text encoder of preset {source}.")
    vision = _rebuilt(backbone.vision_encoder, IMAGE_NAME)
    _copy_weights(backbone.vision_encoder, vision)
    ours = _rebuilt(text, TEXT_NAME, vocabulary_size=vocab_size)
    skipped = _copy_weights(text, ours)
    if skipped:
        warnings.warn(
            f"Preset {source}: its text encoder's {text.vocabulary_size} token embeddings do not fit vocab_size="
            f"{vocab_size}, so the word embeddings start random; the rest of the text encoder loaded.",
            stacklevel=4,
        )
    return vision, ours


def clip_encoders(vocab_size: int, max_length: int, *, image_config: Mapping[str, Any] | None = None,
                  text_config: Mapping[str, Any] | None = None, pretrained: bool | str = False,
                  preset: str = DEFAULT_PRESET):
    """CLIP's vision and text encoders, named `image_backbone` and `text_backbone`.

    Args:
        vocab_size: rows of the text encoder's token embedding (the zoo's word vocabulary).
        max_length: tokens per text the model takes (at most the encoder's positions).
        image_config: overrides of `VISION_ARCHITECTURE` (random initialisation only).
        text_config: overrides of `TEXT_ARCHITECTURE` (random initialisation only).
        pretrained: False, True (download `preset`) or a local CLIP preset directory.
        preset: the published preset `pretrained=True` loads.

    Returns:
        `(vision_encoder, text_encoder)`: KerasHub `CLIPVisionEncoder` and `CLIPTextEncoder`.

    Raises:
        ValueError: unknown config keys, a missing path, or `max_length` beyond the preset's positions.
        PretrainedWeightsError: `pretrained=True` and the preset cannot be fetched.
        ImportError: KerasHub is not installed.
    """
    if not isinstance(pretrained, bool) and not (isinstance(pretrained, str) and os.path.isdir(pretrained)):
        raise ValueError(f"pretrained={pretrained!r}: expected True, False or a local CLIP preset directory.")
    if pretrained:
        source = repr(pretrained if isinstance(pretrained, str) else preset)
        return _from_preset(load_preset(pretrained, preset), vocab_size, max_length, source)
    hub = import_keras_hub()
    configs = []
    for part, architecture, overrides in (("image", VISION_ARCHITECTURE, image_config),
                                          ("text", TEXT_ARCHITECTURE, text_config)):
        unknown = sorted(set(overrides or {}) - set(architecture))
        if unknown:
            raise ValueError(f"{part}_config={dict(overrides)!r}: unknown keys {unknown}; expected some of "
                             f"{sorted(architecture)}.")
        configs.append({**architecture, **dict(overrides or {})})
    return _vision_encoder(hub, configs[0]), _text_encoder(hub, configs[1], vocab_size)


def image_tower(images, encoder):
    """Adapts `[B, H, W, C]` images in [0, 1] to the encoder (RGB, its size, CLIP's statistics) and pools its class token.

    Returns:
        `[B, hidden_dim]`.
    """
    side, _, channels = encoder.image_shape
    adapted = BackboneImageAdapter(side, side, channels, "clip", name="image_adapter")(images)
    sequence = encoder({"images": adapted})
    # CLIP's image feature is its class token, position 0 of the encoder's output.
    first = keras.layers.Cropping1D((0, sequence.shape[1] - 1), name="image_class_token")(sequence)
    return keras.layers.Flatten(name="image_pool")(first)


def text_tower(token_ids, encoder):
    """Runs the text encoder on the zoo's word ids and pools each text at its last real token.

    Returns:
        `[B, hidden_dim]`.
    """
    sequence = encoder({"token_ids": token_ids})
    return LastTokenPooling(name="text_pool")([sequence, token_ids])
