"""Unimodal baselines: image-only and text-only models, first-class in the catalog."""



import keras

from zoo.core import keys
from zoo.models import common
from zoo.models.common import (
    CLASSES,
    CNN_TOWER,
    HEAD,
    IMAGE_INPUT,
    RNN_TOWER,
    TEXT_INPUT,
    H,
    declare,
)
from zoo.registry import register_model
from zoo.towers import image as image_towers
from zoo.towers import text as text_towers


@register_model(
    "cnn_seed",
    origin="Seed system 1: Conv2D(32,3,relu) -> MaxPool(2) -> Conv2D(64,3,relu) -> MaxPool(2) -> Flatten -> Dense(128,relu) -> Dense(10,softmax).",
    modalities=("image",),
    fusion=None,
    check=common.check,
)
@declare(*IMAGE_INPUT, *CLASSES)
def cnn_seed(*, image_shape, num_classes):
    """The seed image CNN for MNIST digits, exactly as the seed defines it."""
    images = common.image_input(image_shape)
    feature_map = image_towers.cnn_feature_map(images)
    features = image_towers.flatten_features(feature_map, units=128)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="head_probabilities")(features)
    return keras.Model({keys.IMAGE: images}, probabilities, name="cnn_seed")


@register_model(
    "lstm_seed",
    origin="Seed system 2: Embedding(vocab,128) -> LSTM(128, return_sequences) -> LSTM(128) -> Dense(10, softmax).",
    modalities=("text",),
    fusion=None,
    check=common.check,
)
@declare(*TEXT_INPUT, *CLASSES, H("unroll", bool, False))
def lstm_seed(*, vocab_size, max_length, num_classes, unroll):
    """The seed two-layer LSTM text classifier, with the padding mask honoured."""
    token_ids = common.token_input(max_length)
    embedded = text_towers.embed_tokens(token_ids, vocab_size=vocab_size, embed_dim=128)
    features = text_towers.rnn_sequence(embedded, units=(128, 128), unroll=unroll)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="head_probabilities")(features)
    return keras.Model({keys.TOKEN_IDS: token_ids}, probabilities, name="lstm_seed")


@register_model(
    "cnn_image",
    origin="Seed system 1's CNN with the zoo's hidden-layer head and optional batch norm / dropout.",
    modalities=("image",),
    fusion=None,
    check=common.check,
)
@declare(*IMAGE_INPUT, *CNN_TOWER, *CLASSES, *HEAD)
def cnn_image(*, image_shape, conv_filters, kernel_size, pool_size, batch_norm, image_dropout, image_units,
              num_classes, head_units, head_dropout, task):
    """Image-only baseline: the configurable seed CNN tower and a hidden-layer head."""
    images = common.image_input(image_shape)
    feature_map = image_towers.cnn_feature_map(
        images, filters=conv_filters, kernel_size=kernel_size, pool_size=pool_size, batch_norm=batch_norm
    )
    features = image_towers.flatten_features(feature_map, units=image_units, dropout=image_dropout)
    outputs = common.head(features, num_classes=num_classes, head_units=head_units, head_dropout=head_dropout, task=task)
    return keras.Model({keys.IMAGE: images}, outputs, name="cnn_image")


@register_model(
    "resnet_image",
    origin="A small ResNet (He et al., 2016, 'Deep Residual Learning for Image Recognition') sized for 28x28 digits.",
    modalities=("image",),
    fusion=None,
    check=common.check,
)
@declare(*IMAGE_INPUT, H("widths", tuple[int, ...], (32, 64)), H("blocks_per_stage", int, 1),
         H("image_units", int, 128), *CLASSES, *HEAD)
def resnet_image(*, image_shape, widths, blocks_per_stage, image_units, num_classes, head_units, head_dropout, task):
    """Image-only residual network: stem, stride-2 stages of basic blocks, global pooling."""
    images = common.image_input(image_shape)
    feature_map = image_towers.residual_feature_map(images, widths=widths, blocks_per_stage=blocks_per_stage)
    features = image_towers.pooled_features(feature_map, units=image_units)
    outputs = common.head(features, num_classes=num_classes, head_units=head_units, head_dropout=head_dropout, task=task)
    return keras.Model({keys.IMAGE: images}, outputs, name="resnet_image")


@register_model(
    "rnn_text",
    origin="Seed system 2's recurrent tower, configurable (LSTM or GRU, stacked, bidirectional), with the zoo's head.",
    modalities=("text",),
    fusion=None,
    check=common.check,
)
@declare(*TEXT_INPUT, *RNN_TOWER, *CLASSES, *HEAD)
def rnn_text(*, vocab_size, max_length, embed_dim, rnn_units, rnn_cell, bidirectional, unroll,
             num_classes, head_units, head_dropout, task):
    """Text-only baseline: embedding, stacked (bi)LSTM or GRU, hidden-layer head."""
    token_ids = common.token_input(max_length)
    embedded = text_towers.embed_tokens(token_ids, vocab_size=vocab_size, embed_dim=embed_dim)
    features = text_towers.rnn_sequence(
        embedded, units=rnn_units, cell=rnn_cell, bidirectional=bidirectional, unroll=unroll
    )
    outputs = common.head(features, num_classes=num_classes, head_units=head_units, head_dropout=head_dropout, task=task)
    return keras.Model({keys.TOKEN_IDS: token_ids}, outputs, name="rnn_text")


TRANSFORMER_TOWER = (
    H("embed_dim", int, 64),
    H("num_layers", int, 2),
    H("num_heads", int, 4),
    H("ff_dim", int, 128),
    H("dropout", float, 0.0),
)


@register_model(
    "transformer_text",
    origin="A small Transformer encoder (Vaswani et al., 2017) with sinusoidal positions and masked mean pooling.",
    modalities=("text",),
    fusion=None,
    check=common.check,
)
@declare(*TEXT_INPUT, *TRANSFORMER_TOWER, *CLASSES, *HEAD)
def transformer_text(*, vocab_size, max_length, embed_dim, num_layers, num_heads, ff_dim, dropout,
                     num_classes, head_units, head_dropout, task):
    """Text-only baseline: a masked Transformer encoder, mean-pooled over real tokens."""
    token_ids = common.token_input(max_length)
    embedded = text_towers.embed_tokens(token_ids, vocab_size=vocab_size, embed_dim=embed_dim)
    sequence = text_towers.transformer_sequence(
        embedded, num_layers=num_layers, num_heads=num_heads, ff_dim=ff_dim, dropout=dropout
    )
    features = text_towers.masked_mean(sequence)
    outputs = common.head(features, num_classes=num_classes, head_units=head_units, head_dropout=head_dropout, task=task)
    return keras.Model({keys.TOKEN_IDS: token_ids}, outputs, name="transformer_text")


__all__ = ["cnn_seed", "lstm_seed", "cnn_image", "resnet_image", "rnn_text", "transformer_text"]
