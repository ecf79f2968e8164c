"""Captioning: generate text about an image (seed system 5's decoder use).

The decoder reads the caption so far (embedding + LSTM), lets every position
attend over the CNN's image positions, and predicts the next word at each
position. Padding id 0 doubles as "end of caption": a model trained on
zero-padded captions learns to emit 0 after the last word, which is where
`generate_captions` stops.
"""

import keras
import numpy as np

from zoo.core import keys
from zoo.layers import CrossModalAttention
from zoo.models import common, decoding
from zoo.models.common import CNN_TOWER, IMAGE_INPUT, RNN_TOWER, TEXT_INPUT, H, declare
from zoo.registry import register_model
from zoo.towers import image as image_towers
from zoo.towers import text as text_towers


def _check_captioner(hp):
    # A bidirectional decoder would see the word it must predict.
    common.require(not hp["bidirectional"], "bidirectional", hp["bidirectional"], "False: a decoder cannot read ahead")
    common.check(hp)


@register_model(
    "cnn_lstm_captioner",
    origin="Seed system 5: LSTM text states attend over image features (MultiHeadAttention, 8 heads), "
    "then a decoder to the vocabulary, for generating text from an image.",
    modalities=("image", "text"),
    fusion="attention",
    check=_check_captioner,
)
@declare(*IMAGE_INPUT, *CNN_TOWER, *TEXT_INPUT, *RNN_TOWER, H("num_heads", int, 8), H("attention_dim", int, 128))
def cnn_lstm_captioner(**hp):
    """Next-word decoder conditioned on the image; outputs [batch, max_length, vocab_size] probabilities.

    Input `token_ids` is the caption shifted right behind the start id
    `vocab_size` (see `teacher_forcing`); the target at each position is the
    caption's word there. Generate with `zoo.models.generate_captions`.
    """
    vocab_size = hp["vocab_size"]
    images = common.image_input(hp["image_shape"])
    token_ids = common.token_input(hp["max_length"])
    feature_map = image_towers.cnn_feature_map(
        images, filters=hp["conv_filters"], kernel_size=hp["kernel_size"], pool_size=hp["pool_size"],
        batch_norm=hp["batch_norm"],
    )
    positions = image_towers.feature_map_positions(feature_map)
    # One extra embedding row for the start id; 0 stays padding.
    embedded = text_towers.embed_tokens(token_ids, vocab_size=vocab_size + 1, embed_dim=hp["embed_dim"])
    sequence = text_towers.rnn_sequence(
        embedded, units=hp["rnn_units"], cell=hp["rnn_cell"], unroll=hp["unroll"],
        return_sequences=True,
    )
    attended = CrossModalAttention(hp["num_heads"], hp["attention_dim"] // hp["num_heads"], name="fusion_attention")(
        [sequence, positions]
    )
    logits = keras.layers.Dense(vocab_size, name="head_logits")(attended)
    probabilities = keras.layers.Activation("softmax", dtype="float32", name="head_probabilities")(logits)
    return keras.Model({keys.IMAGE: images, keys.TOKEN_IDS: token_ids}, probabilities, name="cnn_lstm_captioner")


def teacher_forcing(token_ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoder inputs and targets from zero-padded caption ids.

    Args:
        token_ids: [batch, max_length] int caption ids, 0 = padding.
        vocab_size: the model's vocabulary size; `vocab_size` is the start id.

    Returns:
        (inputs, targets): inputs are the start id then the caption without its
        last position; targets are the caption itself.
    """
    token_ids = np.asarray(token_ids)
    start = np.full((token_ids.shape[0], 1), vocab_size, dtype=token_ids.dtype)
    return np.concatenate([start, token_ids[:, :-1]], axis=1), token_ids


def generate_captions(model: keras.Model, images: np.ndarray, vocabulary: list[str] | None = None, *,
                      beam_width: int = 1):
    """Captions by greedy decoding (`beam_width=1`) or beam search; see `zoo.models.decoding.decode`.

    Args:
        model: a `cnn_lstm_captioner` model.
        images: [batch, H, W, C] float32 images in [0, 1].
        vocabulary: if given, ids are turned into words joined by spaces.
        beam_width: captions kept per image at each step.

    Returns:
        A list of id lists (or of strings when `vocabulary` is given).
    """
    return decoding.decode(model, images, beam_width=beam_width, vocabulary=vocabulary)
