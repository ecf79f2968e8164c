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
import hashlib
import os
from collections.abc import Iterable, Mapping

import numpy as np
import tensorflow as tf

from zoo.core.punctuation import PUNCTUATION

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1
RESERVED = (PAD_TOKEN, OOV_TOKEN)

# Characters that separate words besides whitespace.
_PUNCTUATION = PUNCTUATION  # shared with the caption metrics (zoo.core.punctuation)


def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Lowercases a string tensor and turns punctuation into spaces.

    Invalid UTF-8 bytes become U+FFFD instead of failing, so any byte string
    gives a finite result.
    """
    # ICU's UTF-8 lowercasing replaces each ill-formed subsequence with U+FFFD
    # itself, as Python's errors="replace" does; a separate transcode to do it
    # gave the same bytes on 250,000 fuzzed strings and cost 89 µs a batch of 128 texts.
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


class VocabularyError(ValueError):
    """A vocabulary file or token list is malformed (reserved entries, duplicates, encoding)."""


class VocabularyMismatchError(VocabularyError):
    """A vocabulary differs from the one its model was trained with (size, hash or tokens)."""


def vocabulary_text(tokens: list[str]) -> str:
    """The canonical file content of a vocabulary: one token per line, each line ending in a newline."""
    return "\n".join(tokens) + "\n"


def vocabulary_sha256(tokens: list[str]) -> str:
    """SHA-256 (hex) of the vocabulary file `save_vocabulary` writes for `tokens`.

    The hash of the file content, so `sha256sum vocabulary.txt` gives the same
    value for a file written by the zoo.
    """
    return hashlib.sha256(vocabulary_text(list(tokens)).encode("utf-8")).hexdigest()


def save_vocabulary(tokens: list[str], path: str | os.PathLike) -> None:
    """Writes a vocabulary file atomically (temp file beside it, then rename).

    Raises:
        VocabularyError: (a ValueError) if the list does not start with the
            reserved entries, holds a token twice, or a token contains a line break.
    """
    tokens = list(tokens)
    bad = [t for t in tokens if not isinstance(t, str) or "\n" in t or "\r" in t]
    if bad:
        raise VocabularyError(f"Vocabulary tokens must be strings without line breaks: {bad[:3]!r}.")
    check_vocabulary(tokens, source="the vocabulary to save")
    from zoo.core.atomic import atomic_write_text

    atomic_write_text(path, vocabulary_text(tokens), overwrite=True)


def load_vocabulary(path: str | os.PathLike, expected: Mapping | None = None) -> list[str]:
    """Reads a vocabulary file written by `save_vocabulary`, optionally checked against its model's record.

    Args:
        path: the vocabulary file (UTF-8, one token per line).
        expected: what the model was trained with, for example
            `{"size": 36, "sha256": "..."}` from a run's `config.json`; keys
            `size`, `sha256` and `tokens` (the expected token list, which lets
            the error name the first differing line). Missing or None entries
            are not checked.

    Returns:
        The token list, reserved entries first.

    Raises:
        FileNotFoundError: if the file is missing.
        VocabularyError: (a ValueError) if it is not UTF-8, does not start
            with the reserved entries, repeats a token or has a reserved token
            on another line.
        VocabularyMismatchError: (a VocabularyError) if it differs from `expected`.
    """
    source = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise VocabularyError(f"{source!r} is not UTF-8 text: invalid byte on line {line}.") from None
    tokens = content.split("\n")
    if tokens and tokens[-1] == "":
        tokens = tokens[:-1]
    if tuple(tokens[:2]) != RESERVED:
        raise VocabularyError(
            f"{source!r} is not a zoo vocabulary file: it must start with an empty line and "
            f"{OOV_TOKEN!r}, got {tokens[:2]!r}."
        )
    check_vocabulary(tokens, expected, source=repr(source))
    return tokens


def check_vocabulary(tokens: list[str], expected: Mapping | None = None, *, source: str = "the vocabulary") -> None:
    """Checks a token list's layout and, when given, that it is the one a model was trained with.

    Args:
        tokens: the token list (line N of the file is `tokens[N - 1]`).
        expected: as for `load_vocabulary`: `size`, `sha256` and/or `tokens`.
        source: how messages name the vocabulary (a quoted file path).

    Raises:
        VocabularyError: reserved entries missing or out of place, or a token
            listed twice (named with both line numbers).
        VocabularyMismatchError: a size, hash or token that differs from `expected`.
        ValueError: for an `expected` key other than size, sha256 and tokens.
    """
    tokens = list(tokens)
    if tuple(tokens[:2]) != RESERVED:
        raise VocabularyError(f"{source} must start with {list(RESERVED)!r}; got {tokens[:2]!r}.")
    # The lookup table maps each word to one id: a repeated word or a reserved
    # word further down would make the table ambiguous (TensorFlow only says
    # "HashTable has different value for same key" at export time).
    first_line: dict[str, int] = {}
    for index, token in enumerate(tokens):
        line = index + 1
        if index >= len(RESERVED) and token in RESERVED:
            what = "an empty line" if token == PAD_TOKEN else repr(token)
            raise VocabularyError(
                f"{source} has {what} on line {line}: the reserved entries ('' and {OOV_TOKEN!r}) belong on lines 1 and 2 only."
            )
        if token in first_line:
            raise VocabularyError(
                f"{source} lists {token!r} twice, on lines {first_line[token]} and {line}: each token must appear once."
            )
        first_line[token] = line
    if expected is None:
        return
    unknown = sorted(set(expected) - {"size", "sha256", "tokens"})
    if unknown:
        raise ValueError(f"expected has unknown key(s) {unknown}; allowed: 'size', 'sha256', 'tokens'.")
    size, digest, reference = expected.get("size"), expected.get("sha256"), expected.get("tokens")
    problems = []
    if size is not None and len(tokens) != size:
        problems.append(f"{len(tokens)} tokens where the model was trained with {size}")
    if reference is not None:
        reference = list(reference)
        line = next((i + 1 for i, (a, b) in enumerate(zip(tokens, reference, strict=False)) if a != b), None)
        if line is None and len(tokens) != len(reference):
            line = min(len(tokens), len(reference)) + 1
        if line is not None:
            got = repr(tokens[line - 1]) if line <= len(tokens) else "nothing"
            want = repr(reference[line - 1]) if line <= len(reference) else "nothing"
            if size is None and len(tokens) != len(reference):
                problems.append(f"{len(tokens)} tokens where the model was trained with {len(reference)}")
            problems.append(f"first difference on line {line}: {got} where the model has {want}")
    if not problems and digest is not None:
        actual = vocabulary_sha256(tokens)
        if actual != digest:
            problems.append(
                f"content hash sha256 {actual[:12]}... where the model was trained with {str(digest)[:12]}... "
                "(a token was changed or moved)"
            )
    if problems:
        raise VocabularyMismatchError(
            f"{source} is not the vocabulary the model was trained with: {'; '.join(problems)}. "
            "Use the vocabulary.txt written with the model."
        )


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
        # Saved with an export as the record of its vocabulary (zoo.export.metadata reads it back).
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(words, ids), default_value=OOV_ID
        )
        self._by_hash = _sorted_by_hash(self.vocabulary)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        words = split_words(texts)
        ids = tf.ragged.map_flat_values(self.word_ids, words)
        # `to_tensor` with a shape truncates longer rows itself; slicing the ragged
        # ids first added 17 ops to every call (2-7% of a batch-1 SavedModel call, two runs).
        return ids.to_tensor(default_value=PAD_ID, shape=[None, self.max_length])

    def word_ids(self, words: tf.Tensor) -> tf.Tensor:
        """The int32 ids of a 1-D string tensor of standardized words; `OOV_ID` for unknown ones.

        The words are found by their hash in the vocabulary sorted by hash, and
        the word found is compared with the word sought, so the ids are exactly
        the table's. Constants, not the table, so that a graph that tokenizes
        holds no resource: in a SavedModel signature whose input checks guard
        the tokenizer (`zoo.export.signatures.guarded`), the table made a
        batch-1 call 23 µs slower (374 against 351 µs, median of 9 interleaved
        rounds). Two words of the vocabulary with one hash (odds about n²/2⁶⁴)
        fall back to the table.
        """
        # Run eagerly, nothing is captured, and the table is one op where the search is
        # eight (an eager call with 60,000 words: 657 against 813-840 µs); in a graph
        # the arrays become the graph's constants.
        if self._by_hash is None or tf.executing_eagerly():
            return tf.cast(self.table.lookup(words), tf.int32)
        hashes, sorted_words, sorted_ids = self._by_hash
        sought = tf.reshape(tf.strings.to_hash_bucket_fast(words, _HASH_BUCKETS), [1, -1])
        position = tf.raw_ops.LowerBound(sorted_inputs=hashes, values=sought, out_type=tf.int32)[0]
        found = tf.equal(tf.gather(sorted_words, position), words)
        return tf.where(found, tf.gather(sorted_ids, position), OOV_ID)


# Fingerprint64 modulo the largest int64: the hashes `Tokenizer.word_ids` sorts by.
_HASH_BUCKETS = 2**63 - 1


def _sorted_by_hash(vocabulary: list[str]):
    """[1, n + 1] sorted hashes, [n + 1] words and [n + 1] int32 ids of the vocabulary's words.

    The last entry is a sentinel above every hash (a word no lookup matches,
    id `OOV_ID`), so that a position past the last word still indexes the
    arrays. None when two words share a hash.
    """
    words = np.array([w.encode("utf-8") for w in vocabulary[len(RESERVED):]], dtype=object)
    hashes = tf.strings.to_hash_bucket_fast(tf.constant(words, tf.string), _HASH_BUCKETS).numpy()
    if len(np.unique(hashes)) < len(hashes):
        return None
    order = np.argsort(hashes, kind="stable")
    sentinel = np.iinfo(np.int64).max
    return (
        np.append(hashes[order], sentinel)[None, :],
        np.append(words[order], b""),
        np.append(np.arange(len(RESERVED), len(vocabulary))[order], OOV_ID).astype(np.int32),
    )
