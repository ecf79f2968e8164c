"""The CNN + LSTM family: seed towers joined by every fusion the zoo carries.

All variants share the image tower (the seed CNN, configurable) and the text
tower (embedding + stacked LSTM/GRU), so their results compare fusion alone.
"""

import keras

from zoo.core import keys
from zoo.layers import CrossModalAttention, FiLM, GatedFusion, LateFusion, WeightedSumFusion
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

TOWERS = (*IMAGE_INPUT, *CNN_TOWER, *TEXT_INPUT, *RNN_TOWER)
_MODALITIES = ("image", "text")


def _feature_dict(images, token_ids):
    # Models take a dict keyed like the tf.data elements and serving signatures.
    return {keys.IMAGE: images, keys.TOKEN_IDS: token_ids}


def _inputs(hp):
    return common.image_input(hp["image_shape"]), common.token_input(hp["max_length"])


def _head(fused, hp):
    return common.head(
        fused, num_classes=hp["num_classes"], head_units=hp["head_units"], head_dropout=hp["head_dropout"], task=hp["task"]
    )


def _matched(image_features, text_features):
    """Projects text features to the image feature size when they differ (needed to add them)."""
    if text_features.shape[-1] == image_features.shape[-1]:
        return text_features
    return keras.layers.Dense(image_features.shape[-1], name="fusion_text_projection")(text_features)


@register_model(
    "cnn_lstm_concat_seed",
    origin="Seed system 3: the seed CNN's and seed LSTM's 128-d features -> Concatenate -> Dense(10, softmax).",
    modalities=_MODALITIES,
    fusion="concat",
    check=common.check,
)
@declare(*IMAGE_INPUT, *TEXT_INPUT, *CLASSES, H("unroll", bool, False))
def cnn_lstm_concat_seed(*, image_shape, vocab_size, max_length, num_classes, unroll):
    """The seed multimodal model exactly as defined: fused features, a linear softmax head."""
    images, token_ids = common.image_input(image_shape), common.token_input(max_length)
    image_features = image_towers.flatten_features(image_towers.cnn_feature_map(images), units=128)
    embedded = text_towers.embed_tokens(token_ids, vocab_size=vocab_size, embed_dim=128)
    text_features = text_towers.rnn_sequence(embedded, units=(128, 128), unroll=unroll)
    fused = keras.layers.Concatenate(name="fusion_concat")([image_features, text_features])
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="head_probabilities")(fused)
    return keras.Model(_feature_dict(images, token_ids), probabilities, name="cnn_lstm_concat_seed")


@register_model(
    "cnn_lstm_concat",
    origin="Seed system 3 with a hidden-layer head after concatenation.",
    modalities=_MODALITIES,
    fusion="concat",
    check=common.check,
)
@declare(*TOWERS, *CLASSES, *HEAD)
def cnn_lstm_concat(**hp):
    """Concatenation fusion of the CNN and LSTM features, then a hidden-layer head."""
    images, token_ids = _inputs(hp)
    fused = keras.layers.Concatenate(name="fusion_concat")([common.image_vector(images, hp), common.text_features(token_ids, hp)])
    return keras.Model(_feature_dict(images, token_ids), _head(fused, hp), name="cnn_lstm_concat")


@register_model(
    "cnn_lstm_wsum_fixed",
    origin="Seed system 4: weighted-sum fusion C = alpha*A + (1-alpha)*B with a fixed mixing weight.",
    modalities=_MODALITIES,
    fusion="weighted_sum",
    check=common.check,
)
@declare(*TOWERS, H("alpha", float, 0.5), *CLASSES, *HEAD)
def cnn_lstm_wsum_fixed(**hp):
    """Fixed-weight sum of image and text features (alpha weighs the image)."""
    images, token_ids = _inputs(hp)
    image_features = common.image_vector(images, hp)
    text_features = _matched(image_features, common.text_features(token_ids, hp))
    fused = WeightedSumFusion(alpha=hp["alpha"], name="fusion_weighted_sum")([image_features, text_features])
    return keras.Model(_feature_dict(images, token_ids), _head(fused, hp), name="cnn_lstm_wsum_fixed")


@register_model(
    "cnn_lstm_wsum_learned",
    origin="Seed system 4: weighted-sum fusion F = sum_i w_i f_i with learned (softmax-normalised) weights.",
    modalities=_MODALITIES,
    fusion="weighted_sum",
    check=common.check,
)
@declare(*TOWERS, *CLASSES, *HEAD)
def cnn_lstm_wsum_learned(**hp):
    """Sum of image and text features with learned mixing weights."""
    images, token_ids = _inputs(hp)
    image_features = common.image_vector(images, hp)
    text_features = _matched(image_features, common.text_features(token_ids, hp))
    fused = WeightedSumFusion(learned=True, name="fusion_weighted_sum")([image_features, text_features])
    return keras.Model(_feature_dict(images, token_ids), _head(fused, hp), name="cnn_lstm_wsum_learned")


@register_model(
    "cnn_lstm_gated",
    origin="Gated multimodal unit: Arevalo et al., 2017, 'Gated Multimodal Units for Information Fusion'.",
    modalities=_MODALITIES,
    fusion="gated",
    check=common.check,
)
@declare(*TOWERS, H("gate_units", int, 128), *CLASSES, *HEAD)
def cnn_lstm_gated(**hp):
    """A learned per-feature gate chooses between image and text features."""
    images, token_ids = _inputs(hp)
    fused = GatedFusion(hp["gate_units"], name="fusion_gated")([common.image_vector(images, hp), common.text_features(token_ids, hp)])
    return keras.Model(_feature_dict(images, token_ids), _head(fused, hp), name="cnn_lstm_gated")


@register_model(
    "cnn_lstm_film",
    origin="FiLM: Perez et al., 2018, 'FiLM: Visual Reasoning with a General Conditioning Layer'.",
    modalities=_MODALITIES,
    fusion="film",
    check=common.check,
)
@declare(*TOWERS, *CLASSES, *HEAD)
def cnn_lstm_film(**hp):
    """The text scales and shifts each channel of the CNN's last feature map."""
    images, token_ids = _inputs(hp)
    modulated = FiLM(name="fusion_film")([common.image_map(images, hp), common.text_features(token_ids, hp)])
    features = image_towers.flatten_features(modulated, units=hp["image_units"], dropout=hp["image_dropout"])
    return keras.Model(_feature_dict(images, token_ids), _head(features, hp), name="cnn_lstm_film")


@register_model(
    "cnn_lstm_xattn",
    origin="Seed system 5: text LSTM states attend over image features with MultiHeadAttention (8 heads).",
    modalities=_MODALITIES,
    fusion="attention",
    check=common.check,
)
@declare(*TOWERS, H("num_heads", int, 8), H("attention_dim", int, 128), H("attention_dropout", float, 0.0),
         *CLASSES, *HEAD)
def cnn_lstm_xattn(**hp):
    """Each word's LSTM state attends over the CNN's 5x5 positions; mean over words; hidden-layer head.

    `zoo.models.attention_scores(model, inputs)` returns the attention weights
    for plotting.
    """
    images, token_ids = _inputs(hp)
    positions = image_towers.feature_map_positions(common.image_map(images, hp))
    sequence = common.text_features(token_ids, hp, return_sequences=True)
    attended = CrossModalAttention(
        hp["num_heads"], hp["attention_dim"] // hp["num_heads"], hp["attention_dropout"], name="fusion_attention"
    )([sequence, positions])
    fused = text_towers.masked_mean(attended, prefix="fusion")
    return keras.Model(_feature_dict(images, token_ids), _head(fused, hp), name="cnn_lstm_xattn")


@register_model(
    "cnn_lstm_late",
    origin="Late fusion: each modality has its own head; their logits are averaged.",
    modalities=_MODALITIES,
    fusion="late",
    check=common.check,
)
@declare(*TOWERS, *CLASSES, *HEAD)
def cnn_lstm_late(**hp):
    """Image and text are classified separately; the averaged logits decide."""
    images, token_ids = _inputs(hp)
    head_args = {"num_classes": hp["num_classes"], "head_units": hp["head_units"], "head_dropout": hp["head_dropout"]}
    image_logits = common.head_logits(common.image_vector(images, hp), prefix="image_head", **head_args)
    text_logits = common.head_logits(common.text_features(token_ids, hp), prefix="text_head", **head_args)
    logits = LateFusion(name="fusion_late")([image_logits, text_logits])
    return keras.Model(_feature_dict(images, token_ids), common.output_layer(logits, hp["task"]), name="cnn_lstm_late")


def _check_tasks(tasks):
    names = [name for name, _ in tasks]
    valid = bool(tasks) and len(set(names)) == len(names) and all(
        name.isidentifier() and n >= 2 for name, n in tasks
    )
    common.require(valid, "tasks", tasks, "distinct (identifier name, num_classes >= 2) pairs")


@register_model(
    "cnn_lstm_multitask",
    origin="Seed system 7 (several tasks at once): concat fusion with one named head per task.",
    modalities=_MODALITIES,
    fusion="concat",
    check=lambda hp: (_check_tasks(hp["tasks"]), common.check(hp)),
)
@declare(*TOWERS, H("tasks", tuple[tuple[str, int], ...], (("digit", 10), ("parity", 2))),
         H("head_units", int, 128), H("head_dropout", float, 0.2))
def cnn_lstm_multitask(*, tasks, head_units, head_dropout, **hp):
    """Concat fusion feeding one softmax head per task; outputs a dict keyed by task name."""
    images, token_ids = _inputs(hp)
    fused = keras.layers.Concatenate(name="fusion_concat")([common.image_vector(images, hp), common.text_features(token_ids, hp)])
    outputs = {}
    for name, num_classes in tasks:
        logits = common.head_logits(
            fused, num_classes=num_classes, head_units=head_units, head_dropout=head_dropout, prefix=f"head_{name}"
        )
        outputs[name] = keras.layers.Activation("softmax", dtype="float32", name=name)(logits)
    return keras.Model(_feature_dict(images, token_ids), outputs, name="cnn_lstm_multitask")
