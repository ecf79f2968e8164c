"""Contrastive dual encoders: an image tower and a text tower projected into one embedding space.

The image → text use of seed system 5's towers the way CLIP (Radford et al.,
2021) trains them: each tower ends in a linear projection, `ContrastiveHead`
normalises both and holds the learnable temperature, and `ContrastiveLoss`
(symmetric InfoNCE, or SigLIP's sigmoid loss) pulls matching image-text pairs
together across the batch. `zoo.train` compiles and trains them like the
classifiers, gathering the global batch across replicas for the loss; the
embeddings serve zero-shot classification and retrieval
(`zoo.models.embed_images`, `embed_texts`). `clip_dual_encoder` puts the same
head on KerasHub's CLIP encoders (`zoo.towers.clip`).

>>> import zoo
>>> model = zoo.build("cnn_lstm_dual_encoder", projection_dim=32)
>>> model.output.shape  # image (32), text (32), logit scale, logit bias
(None, 66)
"""

import os
from typing import Literal

import keras

from zoo.core import keys
from zoo.layers import ContrastiveHead
from zoo.layers.contrastive import MAX_LOGIT_SCALE
from zoo.models import common
from zoo.models.common import CNN_TOWER, IMAGE_INPUT, RNN_TOWER, TEXT_INPUT, H, declare
from zoo.models.unimodal import TRANSFORMER_TOWER
from zoo.registry import register_model, require
from zoo.towers import clip as clip_towers
from zoo.towers import image as image_towers
from zoo.towers import text as text_towers

CONTRASTIVE = (
    H("projection_dim", int, 64),
    H("loss", Literal["infonce", "sigmoid"], "infonce"),
    H("positives", Literal["caption", "class"], "caption"),
    H("max_logit_scale", float, MAX_LOGIT_SCALE),
)


def _check(hp):
    common.check(hp)
    common.require(hp["projection_dim"] >= 1, "projection_dim", hp["projection_dim"], "an integer >= 1")
    floor = 10.0 if hp["loss"] == "sigmoid" else 1 / 0.07
    common.require(
        hp["max_logit_scale"] >= floor, "max_logit_scale", hp["max_logit_scale"],
        f"at least the initial logit scale {floor:.4g} of loss={hp['loss']!r}",
    )


def _image_tower(hp):
    images = common.image_input(hp["image_shape"])
    feature_map = image_towers.cnn_feature_map(
        images, filters=hp["conv_filters"], kernel_size=hp["kernel_size"], pool_size=hp["pool_size"],
        batch_norm=hp["batch_norm"],
    )
    features = image_towers.flatten_features(feature_map, units=hp["image_units"], dropout=hp["image_dropout"])
    return images, keras.layers.Dense(hp["projection_dim"], name="image_projection")(features)


def _contrastive_model(images, token_ids, image_projection, text_features, hp, name, *, use_bias=True):
    text_projection = keras.layers.Dense(hp["projection_dim"], use_bias=use_bias, name="text_projection")(text_features)
    packed = ContrastiveHead(
        loss=hp["loss"], positives=hp["positives"], max_logit_scale=hp["max_logit_scale"], name="head_embeddings"
    )([image_projection, text_projection])
    return keras.Model({keys.IMAGE: images, keys.TOKEN_IDS: token_ids}, packed, name=name)


@register_model(
    "cnn_lstm_dual_encoder",
    origin="Seed system 5's contrastive pretraining of its towers (CNN image tower, LSTM text tower), "
    "trained as CLIP (Radford et al., 2021) or SigLIP (Zhai et al., 2023).",
    modalities=("image", "text"),
    fusion="contrastive",
    check=_check,
)
@declare(*IMAGE_INPUT, *CNN_TOWER, *TEXT_INPUT, *RNN_TOWER, *CONTRASTIVE)
def cnn_lstm_dual_encoder(**hp):
    """CNN and LSTM towers projected into one normalised space; output [B, 2·projection_dim + 2].

    The output packs image embedding, text embedding, logit scale and bias
    (`zoo.layers.contrastive.split_embeddings`); train with
    `zoo.layers.ContrastiveLoss` (token ids or labels as targets).
    """
    images, image_projection = _image_tower(hp)
    token_ids = common.token_input(hp["max_length"])
    embedded = text_towers.embed_tokens(token_ids, vocab_size=hp["vocab_size"], embed_dim=hp["embed_dim"])
    features = text_towers.rnn_sequence(
        embedded, units=hp["rnn_units"], cell=hp["rnn_cell"], bidirectional=hp["bidirectional"], unroll=hp["unroll"]
    )
    return _contrastive_model(images, token_ids, image_projection, features, hp, "cnn_lstm_dual_encoder")


@register_model(
    "cnn_transformer_dual_encoder",
    origin="A CLIP-style dual encoder (Radford et al., 2021) on the zoo's towers: the seed CNN and a small "
    "masked Transformer text encoder (Vaswani et al., 2017), mean-pooled.",
    modalities=("image", "text"),
    fusion="contrastive",
    check=_check,
)
@declare(*IMAGE_INPUT, *CNN_TOWER, *TEXT_INPUT, *TRANSFORMER_TOWER, *CONTRASTIVE)
def cnn_transformer_dual_encoder(**hp):
    """CNN and Transformer towers projected into one normalised space; output [B, 2·projection_dim + 2].

    Same output layout and loss as `cnn_lstm_dual_encoder`.
    """
    images, image_projection = _image_tower(hp)
    token_ids = common.token_input(hp["max_length"])
    embedded = text_towers.embed_tokens(token_ids, vocab_size=hp["vocab_size"], embed_dim=hp["embed_dim"])
    sequence = text_towers.transformer_sequence(
        embedded, num_layers=hp["num_layers"], num_heads=hp["num_heads"], ff_dim=hp["ff_dim"], dropout=hp["dropout"]
    )
    features = text_towers.masked_mean(sequence)
    return _contrastive_model(images, token_ids, image_projection, features, hp, "cnn_transformer_dual_encoder")


def _preset_source(pretrained):
    """What the CLIP encoders load: True (the published preset), a local preset directory, or False."""
    return pretrained if pretrained is True or (isinstance(pretrained, str) and os.path.isdir(pretrained)) else False


def _check_clip(hp):
    _check(hp)
    require(hp["preset"] in clip_towers.PRESETS, "preset", hp["preset"], f"one of {list(clip_towers.PRESETS)}")
    pretrained = hp["pretrained"]
    weights_file = isinstance(pretrained, str) and pretrained.endswith(".weights.h5") and os.path.isfile(pretrained)
    require(isinstance(pretrained, bool) or os.path.isdir(pretrained) or weights_file, "pretrained", pretrained,
            "True, False, a local CLIP preset directory or an existing .weights.h5 file of the whole model")
    from_preset = bool(_preset_source(pretrained))
    for part, architecture in (("image", clip_towers.VISION_ARCHITECTURE), ("text", clip_towers.TEXT_ARCHITECTURE)):
        config = hp[f"{part}_config"]
        key = f"{part}_config"
        # A preset brings its own architecture; a config would be silently ignored.
        require(not (from_preset and config), key, config,
                f"{{}} when the encoders load a preset ({pretrained!r}): a config is for random initialisation")
        require(set(config) <= set(architecture), key, config, f"keys among {sorted(architecture)}")
        merged = {**architecture, **config}
        require(all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in merged.values()), key, config,
                "positive integers")
        require(merged["hidden_dim"] % merged["num_heads"] == 0, key, config,
                f"a hidden_dim divisible by num_heads={merged['num_heads']}")
        if part == "image":
            require(merged["patch_size"] <= merged["image_size"], key, config,
                    f"a patch_size of at most image_size={merged['image_size']}")
        elif not from_preset:
            require(hp["max_length"] <= merged["max_sequence_length"], "max_length", hp["max_length"],
                    f"at most the text encoder's max_sequence_length={merged['max_sequence_length']}")


@register_model(
    "clip_dual_encoder",
    origin="CLIP (Radford et al., 2021) on KerasHub's CLIPVisionEncoder (a ViT) and CLIPTextEncoder (a causal "
    "Transformer), at a CPU-sized configuration; the zoo's word ids, projections and contrastive head.",
    modalities=("image", "text"),
    fusion="contrastive",
    check=_check_clip,
    weights=clip_towers.WEIGHTS,
)
@declare(*IMAGE_INPUT, *TEXT_INPUT, H("image_config", dict, {}), H("text_config", dict, {}), *CONTRASTIVE,
         H("pretrained", bool | str, False), H("preset", str, clip_towers.DEFAULT_PRESET))
def clip_dual_encoder(**hp):
    """KerasHub's CLIP encoders projected into one normalised space; output [B, 2·projection_dim + 2].

    By default a small CLIP, randomly initialised: a ViT over 4x4 patches of
    the digit (repeated to RGB and normalised with CLIP's statistics) and a
    causal text Transformer over the zoo's word ids, both 64 wide with 2
    layers (`image_config` / `text_config` change them; see
    `zoo.towers.clip`). The image is pooled at its class token, the text at
    its last real word (CLIP's end-of-text position), each projected without
    bias as in CLIP. `pretrained=True` loads the vision encoder and the text
    Transformer of the KerasHub preset `preset` (not its word embeddings: the
    zoo's vocabulary is not CLIP's), `pretrained="DIR"` a local CLIP preset,
    `pretrained="FILE.weights.h5"` the whole model. Same output layout and
    loss as `cnn_lstm_dual_encoder`.
    """
    vision, text = clip_towers.clip_encoders(
        hp["vocab_size"], hp["max_length"], image_config=hp["image_config"], text_config=hp["text_config"],
        pretrained=_preset_source(hp["pretrained"]), preset=hp["preset"],
    )
    images = common.image_input(hp["image_shape"])
    token_ids = common.token_input(hp["max_length"])
    image_features = clip_towers.image_tower(images, vision)
    image_projection = keras.layers.Dense(hp["projection_dim"], use_bias=False, name="image_projection")(image_features)
    text_features = clip_towers.text_tower(token_ids, text)
    model = _contrastive_model(images, token_ids, image_projection, text_features, hp, "clip_dual_encoder",
                               use_bias=False)
    if isinstance(hp["pretrained"], str) and os.path.isfile(hp["pretrained"]):
        model.load_weights(hp["pretrained"])
    return model


__all__ = ["clip_dual_encoder", "cnn_lstm_dual_encoder", "cnn_transformer_dual_encoder"]
