"""Tiny synthetic data and models for the training tests (importable by subprocess scripts)."""

from __future__ import annotations

import tensorflow as tf

TINY_OVERRIDES = {
    "conv_filters": (4, 8),
    "image_units": 16,
    "vocab_size": 50,
    "max_length": 8,
    "embed_dim": 8,
    "rnn_units": (8, 8),
    "head_units": 16,
    "head_dropout": 0.1,
}
TINY_MODEL = "cnn_lstm_concat"


def examples(num_examples: int, max_length: int = 8, vocab_size: int = 50) -> tf.data.Dataset:
    """Deterministic examples `(features, label)`; features hold image, token_ids and example_id.

    The label is learnable: it is the example's first token modulo 10, and the
    image brightness also follows it, so a few steps lower the loss.
    """
    ids = tf.data.Dataset.range(num_examples)

    def make(i):
        label = tf.cast(i % 10, tf.int32)
        noise = tf.random.stateless_uniform([28, 28, 1], seed=tf.stack([i, tf.constant(7, tf.int64)]))
        image = 0.5 * noise + 0.05 * tf.cast(label, tf.float32)
        tokens = tf.random.stateless_uniform(
            [max_length], seed=tf.stack([i, tf.constant(11, tf.int64)]), minval=2, maxval=vocab_size, dtype=tf.int32
        )
        tokens = tf.tensor_scatter_nd_update(tokens, [[0]], [2 + label])
        return {"image": image, "token_ids": tokens, "example_id": i}, label

    return ids.map(make)


def dataset_fn(num_examples: int, batch_size: int, *, shuffle_seed: int | None = 1, max_length: int = 8):
    """Returns `fn(input_context)`: this pipeline's shard, shuffled each pass, in per-replica batches."""

    def fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        data = examples(num_examples, max_length)
        if input_context.num_input_pipelines > 1:
            data = data.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if shuffle_seed is not None:
            data = data.shuffle(num_examples, seed=shuffle_seed, reshuffle_each_iteration=True)
        return data.batch(batch_size)

    return fn


def train_tiny(out, *, examples_count: int = 32, batch_size: int = 8, **options):
    """`zoo.train` of the tiny model on `examples_count` synthetic examples; `options` override the defaults."""
    import zoo

    options.setdefault("model_overrides", TINY_OVERRIDES)
    options.setdefault("dataset_fn", dataset_fn(examples_count, batch_size))
    options.setdefault("verbose", 0)
    return zoo.train(TINY_MODEL, out=out, batch_size=batch_size, **options)
