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
