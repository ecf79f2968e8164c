"""Text through a KerasHub backbone's own tokenizer, in graph ops (tf.data and serving).

A model on a KerasHub text backbone takes that backbone's inputs, not the
zoo's word ids: `token_ids`, `padding_mask` and, for BERT, `segment_ids`,
made by the tokenizer saved with the backbone's preset (`[CLS] ... [SEP]`,
WordPiece pieces, the preset's own vocabulary). `BackboneTokenizer` wraps the
preset's preprocessor so the tf.data pipeline (`make_dataset(tokenizer=...)`)
and the SavedModel's serving signature run the very same ops.

A process that loads such a SavedModel needs the tokenizer's ops:
`import tensorflow_text` before `tf.saved_model.load` (TF Serving ships them).

>>> tokenizer = BackboneTokenizer("presets/text", max_length=16)
>>> tokenizer(tf.constant(["is it even?"]))["token_ids"].shape
TensorShape([1, 16])
"""

from __future__ import annotations

import importlib
import os

import tensorflow as tf

__all__ = ["BackboneTokenizer", "BACKBONE_TEXT_INPUTS", "SPECIAL_TOKENS", "word_tokenizer"]

# The inputs a KerasHub text backbone may take, in the zoo's feature-key vocabulary.
BACKBONE_TEXT_INPUTS = ("token_ids", "padding_mask", "segment_ids")
# BERT's special tokens, first, so [PAD] is id 0 as the zoo's padding is.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _keras_hub():
    try:
        return importlib.import_module("keras_hub")
    except ImportError as error:
        raise ImportError("Backbone tokenizers need KerasHub: pip install 'zoo[hub]'.") from error


def word_tokenizer(words):
    """A KerasHub BERT tokenizer whose WordPiece vocabulary is whole words.

    For a text backbone the zoo trains itself on a small corpus (the demo's
    `mnist_text` texts): every known word is one piece, others are `[UNK]`.
    Save it beside the backbone (`save_to_preset`) so the preset carries it.

    Args:
        words: the words, lowercase, without the special tokens (the zoo's
            `fit_vocabulary` list minus its two reserved entries works).

    Returns:
        A `keras_hub.models.BertTokenizer` (lowercasing).

    Raises:
        ValueError: a word listed twice, or a special token among the words.
    """
    words = list(words)
    clashes = sorted(set(words) & set(SPECIAL_TOKENS)) + sorted({w for w in words if words.count(w) > 1})
    if clashes:
        raise ValueError(f"word_tokenizer: {clashes} are special tokens or listed twice; expected distinct words.")
    return _keras_hub().models.BertTokenizer(vocabulary=[*SPECIAL_TOKENS, *words], lowercase=True)


class BackboneTokenizer(tf.Module):
    """Raw strings -> a KerasHub text backbone's inputs, with the preset's tokenizer.

    Args:
        preset: a KerasHub preset holding a tokenizer: a local directory (as
            `save_to_preset` writes) or a published preset name (downloaded).
        max_length: the sequence length, special tokens included; longer texts are truncated.
        input_names: which of `BACKBONE_TEXT_INPUTS` to return, where the
            preprocessor makes them (DistilBERT's has no `segment_ids`).

    Raises:
        ImportError: KerasHub is not installed.
        ValueError: `max_length` is not a positive int, or an unknown input name.
    """

    def __init__(self, preset: str | os.PathLike, max_length: int, input_names=BACKBONE_TEXT_INPUTS,
                 name: str = "backbone_tokenizer"):
        super().__init__(name=name)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 3:
            raise ValueError(f"max_length={max_length!r}: expected an int >= 3 (two special tokens and a word).")
        unknown = sorted(set(input_names) - set(BACKBONE_TEXT_INPUTS))
        if unknown:
            raise ValueError(f"Unknown text inputs {unknown}; expected some of {list(BACKBONE_TEXT_INPUTS)}.")
        hub = _keras_hub()
        self.preset = os.fspath(preset)
        self.max_length = max_length
        self.input_names = tuple(input_names)
        self.preprocessor = hub.models.TextClassifierPreprocessor.from_preset(self.preset, sequence_length=max_length)

    @property
    def vocab_size(self) -> int:
        """The number of token ids the tokenizer can produce."""
        return int(self.preprocessor.tokenizer.vocabulary_size())

    def __call__(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        """Encodes a [batch] string tensor into int32 [batch, max_length] tensors by input name."""
        encoded = self.preprocessor(tf.reshape(texts, [-1]))
        return {name: tf.cast(encoded[name], tf.int32) for name in self.input_names if name in encoded}
