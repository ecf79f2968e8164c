"""The word tokenizer the pipelines and the SavedModel share: ids, padding, truncation."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.data.text import Tokenizer

WORDS = ["", "[UNK]", "is", "it", "even", "seven", "odd"]


@pytest.mark.parametrize("graph", [False, True])
def test_ids_are_padded_and_truncated_at_the_end(graph):
    tokenizer = Tokenizer(WORDS, max_length=4)
    texts = tf.constant(["Is it EVEN?", "seven odd even is it odd", "", "zebra, it", b"\xff is"])
    call = tf.function(tokenizer) if graph else tokenizer
    ids = call(texts).numpy()
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(
        ids,
        [
            [2, 3, 4, 0],  # lowercased, punctuation dropped, padded with 0
            [5, 6, 4, 2],  # longer than max_length: the first four words
            [0, 0, 0, 0],
            [1, 3, 0, 0],  # unknown word: 1
            [1, 2, 0, 0],  # invalid UTF-8 becomes an unknown word
        ],
    )


def test_a_batch_of_zero_texts_gives_zero_rows():
    assert Tokenizer(WORDS, max_length=3)(tf.constant([], tf.string)).shape == (0, 3)


def _table_ids(tokenizer, words):
    return tokenizer.table.lookup(tf.constant(words)).numpy()


@pytest.mark.parametrize("buckets", [None, 3])
def test_ids_are_the_vocabulary_tables_for_known_and_unknown_words(monkeypatch, buckets):
    # With 3 hash buckets the vocabulary's words share hashes and the table answers instead.
    if buckets is not None:
        monkeypatch.setattr("zoo.data.text._HASH_BUCKETS", buckets)
    vocabulary = ["", "[UNK]"] + [f"w{i}" for i in range(300)] + ["été", "naïve", "日本", "[UNK]x"]
    tokenizer = Tokenizer(vocabulary, max_length=4)
    assert (tokenizer._by_hash is None) == (buckets is not None)
    sought = vocabulary[2:] + ["w300", "ete", "日", "", "[unk]", "[UNK]"]
    ids = tf.function(tokenizer.word_ids)(tf.constant(sought)).numpy()
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, _table_ids(tokenizer, sought))
    np.testing.assert_array_equal(ids[:304], np.arange(2, 306))
    np.testing.assert_array_equal(ids[304:], 1)



def test_invalid_utf8_becomes_replacement_characters_as_python_decodes_it():
    from zoo.data.text import standardize

    # Truncated, overlong, surrogate, out-of-range and stray continuation bytes between ASCII words.
    texts = [b"ab\xe2\x82 CD", b"\xc0\xaf x", b"\xed\xa0\x80y", b"\xf4\x90\x80\x80", b"\x80\xbf\xff Z\xc3", b"caf\xc3\xa9"]
    expected = [t.decode("utf-8", errors="replace").lower().encode("utf-8") for t in texts]
    assert standardize(tf.constant(texts)).numpy().tolist() == expected
