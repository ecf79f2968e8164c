"""Text standardization, vocabularies and tokenization as TensorFlow graph ops.

One tokenizer serves training pipelines and exported serving graphs, so the
ids a model saw in training are the ids it gets in production:

1. `standardize`: invalid UTF-8 is replaced by U+FFFD, text is lowercased and
   punctuation becomes spaces.
2. Whitespace split; each word is looked up in the vocabulary.
3. Id 0 is padding, id 1 is any word not in the vocabulary (`[UNK]`).
4. Sequences are truncated or zero-padded at the end to `max_length`.

The vocabulary file is UTF-8, one token per line, in id order, starting with
the two reserved entries: an empty line (padding) and `[UNK]`. It is the same
layout `keras.layers.TextVectorization.get_vocabulary()` returns.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable

import tensorflow as tf

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1
RESERVED = (PAD_TOKEN, OOV_TOKEN)

# Characters that separate words besides whitespace.
_PUNCTUATION = r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']"


def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Lowercases a string tensor and turns punctuation into spaces.

    Invalid UTF-8 bytes become U+FFFD instead of failing, so any byte string
    gives a finite result.
    """
    texts = tf.strings.unicode_transcode(
        texts, input_encoding="UTF-8", output_encoding="UTF-8", errors="replace"
    )
    texts = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.regex_replace(texts, _PUNCTUATION, " ")


def split_words(texts: tf.Tensor) -> tf.RaggedTensor:
    """Standardizes and splits a [batch] string tensor into ragged words."""
    return tf.strings.split(standardize(texts))


def build_vocabulary(texts: Iterable[str | bytes], max_tokens: int | None = None, min_count: int = 1) -> list[str]:
    """Builds a vocabulary from texts, most frequent words first.

    Ties are broken alphabetically so the same texts always give the same ids.

    Args:
        texts: training-split texts only.
        max_tokens: total size including the two reserved entries; None = no cap.
        min_count: words seen fewer times are left out (they map to `[UNK]`).

    Returns:
        The token list, reserved entries first.

    Raises:
        ValueError: if max_tokens is smaller than 3.
    """
    if max_tokens is not None and max_tokens < 3:
        raise ValueError(f"max_tokens={max_tokens!r} is too small: expected at least 3 (pad, [UNK], one word).")
    counts: collections.Counter[str] = collections.Counter()
    batch: list = []
    for text in texts:
        batch.append(text)
        if len(batch) == 4096:
            counts.update(_words(batch))
            batch = []
    if batch:
        counts.update(_words(batch))
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in RESERVED), key=lambda w: (-counts[w], w))
    if max_tokens is not None:
        words = words[: max_tokens - len(RESERVED)]
    return list(RESERVED) + words


def _words(batch) -> list[str]:
    ragged = split_words(tf.constant(batch))
    return [w.decode("utf-8") for w in ragged.flat_values.numpy()]


def save_vocabulary(tokens: list[str], path: str | os.PathLike) -> None:
    """Writes a vocabulary file atomically (temp file beside it, then rename).

    Raises:
        ValueError: if the list does not start with the reserved entries or a
            token contains a newline.
    """
    tokens = list(tokens)
    if tuple(tokens[:2]) != RESERVED:
        raise ValueError(f"A vocabulary must start with {list(RESERVED)!r}; got {tokens[:2]!r}.")
    bad = [t for t in tokens if "\n" in t or "\r" in t]
    if bad:
        raise ValueError(f"Vocabulary tokens cannot contain line breaks: {bad[:3]!r}.")
    from zoo.core.atomic import atomic_write_text

    atomic_write_text(path, "\n".join(tokens) + "\n", overwrite=True)


def load_vocabulary(path: str | os.PathLike) -> list[str]:
    """Reads a vocabulary file written by `save_vocabulary`.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it does not start with the reserved entries.
    """
    with open(path, encoding="utf-8", newline="\n") as f:
        tokens = f.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens = tokens[:-1]
    if tuple(tokens[:2]) != RESERVED:
        raise ValueError(
            f"{os.fspath(path)!r} is not a zoo vocabulary file: it must start with an empty line and "
            f"{OOV_TOKEN!r}, got {tokens[:2]!r}."
        )
    return tokens


class Tokenizer(tf.Module):
    """Maps a [batch] string tensor to [batch, max_length] int32 token ids.

    A `tf.Module`, so a SavedModel that tracks it carries its lookup table.

    Args:
        vocabulary: token list as from `build_vocabulary` / `load_vocabulary`.
        max_length: output length; longer texts are truncated at the end.
    """

    def __init__(self, vocabulary: list[str], max_length: int, name: str = "tokenizer"):
        super().__init__(name=name)
        if tuple(vocabulary[:2]) != RESERVED:
            raise ValueError(f"vocabulary must start with {list(RESERVED)!r}; got {list(vocabulary[:2])!r}.")
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length={max_length!r}: expected a positive int.")
        self.vocabulary = list(vocabulary)
        self.max_length = max_length
        words = tf.constant(self.vocabulary[2:], dtype=tf.string)
        ids = tf.range(2, len(self.vocabulary), dtype=tf.int64)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(words, ids), default_value=OOV_ID
        )

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        words = split_words(texts)
        ids = tf.ragged.map_flat_values(self.table.lookup, words)
        ids = ids[:, : self.max_length]
        return tf.cast(ids.to_tensor(default_value=PAD_ID, shape=[None, self.max_length]), tf.int32)
