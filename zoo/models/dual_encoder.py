"""Contrastive dual encoders: an image tower and a text tower projected into one embedding space.

The image → text use of seed system 5's towers the way CLIP (Radford et al.,
2021) trains them: each tower ends in a linear projection, `ContrastiveHead`
normalises both and holds the learnable temperature, and `ContrastiveLoss`
(symmetric InfoNCE, or SigLIP's sigmoid loss) pulls matching image-text pairs
together across the batch. `zoo.train` compiles and trains them like the
classifiers, gathering the global batch across replicas for the loss; the
embeddings serve zero-shot classification and retrieval
(`zoo.models.embed_images`, `embed_texts`).

>>> import zoo
>>> model = zoo.build("cnn_lstm_dual_encoder", projection_dim=32)
>>> model.output.shape  # image (32), text (32), logit scale, logit bias
(None, 66)
"""

from typing import Literal

import keras

from zoo.core import keys
from zoo.layers import ContrastiveHead
from zoo.layers.contrastive import MAX_LOGIT_SCALE
from zoo.models import common
from zoo.models.common import CNN_TOWER, IMAGE_INPUT, RNN_TOWER, TEXT_INPUT, H, declare
from zoo.models.unimodal import TRANSFORMER_TOWER
from zoo.registry import register_model
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


def _contrastive_model(images, token_ids, image_projection, text_features, hp, name):
    text_projection = keras.layers.Dense(hp["projection_dim"], name="text_projection")(text_features)
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


__all__ = ["cnn_lstm_dual_encoder", "cnn_transformer_dual_encoder"]
