"""tf.data pipelines over mnist_audio (image + audio + text): model-ready or raw batches.

`make_dataset("av", split)` returns batches of `(features, label)`. Model mode:
`image` float32 [B, 28, 28, 1] in [0, 1], `audio` float32 [B, T] in [-1, 1)
(int16 / 32768, zero-padded to the batch's longest recording; the models pad or
crop to their fixed duration themselves, and trailing zeros change nothing),
`token_ids` int32 [B, max_length]. Raw mode: `image` uint8, `audio` int16,
`text` string: the inputs of an exported serving graph.

>>> from zoo.data import audio
>>> features, label = next(iter(audio.make_dataset("av", "train[:64]", batch_size=64)))
>>> sorted(features), features["audio"].dtype.name
(['audio', 'image', 'token_ids'], 'float32')
"""

from __future__ import annotations

import functools
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from zoo.core import keys
from zoo.data.text import Tokenizer, build_vocabulary, split_words

# Importing the builder registers it with TFDS.
from zoo.datasets.mnist_audio import mnist_audio_dataset_builder as _builder

CONFIGS = _builder.CONFIG_NAMES
SPLITS = _builder.SPLITS
MODES = ("model", "raw")
# int16 full scale: samples / 32768 lie in [-1, 1).
INT16_SCALE = 32768.0


def _check(config: str, split: str) -> None:
    if config not in CONFIGS:
        raise ValueError(f"Unknown audio config {config!r}; expected one of {list(CONFIGS)}.")
    if not isinstance(split, str) or split.split("[")[0] not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLITS)} or a TFDS slice such as 'train[:1000]'.")


def class_names(config: str) -> list[str]:
    """What each label id means (the digit names).

    Raises:
        ValueError: for an unknown config.
    """
    _check(config, "train")
    return list(_builder.CLASS_NAMES[config])


def load_builder(config: str, *, data_dir=None, source_dir=None) -> tfds.core.DatasetBuilder:
    """The mnist_audio builder of `config`, prepared first if needed (about 16 s on two cores).

    Args:
        config: "av".
        data_dir: TFDS data directory; None = TFDS's default.
        source_dir: a folder holding `mnist/` and `fsdd/recordings/`; None = `ZOO_DATA_DIR`.

    Raises:
        ValueError: for an unknown config.
        FileNotFoundError, SourceFileError: for missing or corrupted MNIST or FSDD files.
    """
    _check(config, "train")
    builder = _builder.Builder(data_dir=data_dir, config=config, mnist_dir=source_dir, fsdd_dir=source_dir)
    if not builder.is_prepared():
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)
        )
    return builder


def num_examples(config: str, split: str, *, data_dir=None, source_dir=None) -> int:
    """Number of examples in a split or slice."""
    _check(config, split)
    return int(load_builder(config, data_dir=data_dir, source_dir=source_dir).info.splits[split].num_examples)


def _texts(config, split, data_dir, source_dir):
    builder = load_builder(config, data_dir=data_dir, source_dir=source_dir)
    skip = {keys.IMAGE: tfds.decode.SkipDecoding(), keys.AUDIO: tfds.decode.SkipDecoding()}
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders=skip)
    return ds.map(lambda example: example[keys.TEXT]).batch(4096)


def fit_vocabulary(config: str, *, data_dir=None, source_dir=None) -> list[str]:
    """The vocabulary of the config's train texts (padding, `[UNK]`, then words by count)."""
    _check(config, "train")
    return list(_fit_vocabulary(config, os.fspath(data_dir) if data_dir else None, source_dir))


@functools.lru_cache(maxsize=4)
def _fit_vocabulary(config, data_dir, source_dir):
    texts = _texts(config, "train", data_dir, source_dir)
    return tuple(build_vocabulary(t for batch in texts.as_numpy_iterator() for t in batch))


def longest_text(config: str, *, data_dir=None, source_dir=None) -> int:
    """The most words in any text of any split, so that nothing is truncated."""
    _check(config, "train")
    longest = 0
    for split in SPLITS:
        for batch in _texts(config, split, data_dir, source_dir):
            longest = max(longest, int(tf.reduce_max(split_words(batch).row_lengths())))
    return longest


def make_dataset(
    config: str,
    split: str,
    *,
    batch_size: int = 64,
    mode: str = "model",
    tokenizer: Tokenizer | None = None,
    max_length: int = 32,
    shuffle: bool | None = None,
    seed: int = 0,
    deterministic: bool = True,
    input_context: tf.distribute.InputContext | None = None,
    with_ids: bool = False,
    data_dir=None,
    source_dir=None,
) -> tf.data.Dataset:
    """Batches of `(features, label)` from mnist_audio.

    Args:
        config: "av".
        split: "train", "validation", "test" or a TFDS slice of one.
        batch_size: global batch size (per pipeline with `input_context`).
        mode: "model" (float features and token ids) or "raw" (uint8 image,
            int16 audio, string text); see the module docstring.
        tokenizer: maps texts to ids in model mode; None = fitted on the train split.
        max_length: token sequence length (must equal the tokenizer's).
        shuffle: seeded shuffle, new order each epoch; None = True for train.
        seed: shuffle seed.
        deterministic: bit-reproducible order for a seed.
        input_context: keep the examples whose id modulo the number of input
            pipelines is this pipeline's, and batch per replica.
        with_ids: add `features["example_id"]`.
        data_dir, source_dir: see `load_builder`.

    Returns:
        A `tf.data.Dataset` of `(features dict, label int32 [B])`.

    Raises:
        ValueError: for an unknown config, split or mode, a bad batch size, or
            a tokenizer whose max_length differs.
    """
    _check(config, split)
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; expected one of {list(MODES)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive int.")
    if tokenizer is not None and tokenizer.max_length != max_length:
        raise ValueError(f"tokenizer.max_length={tokenizer.max_length} differs from max_length={max_length}.")
    if shuffle is None:
        shuffle = split.startswith("train")
    builder = load_builder(config, data_dir=data_dir, source_dir=source_dir)
    if mode == "model" and tokenizer is None:
        tokenizer = Tokenizer(fit_vocabulary(config, data_dir=data_dir, source_dir=source_dir), max_length)
    wanted = (keys.IMAGE, keys.AUDIO, keys.TEXT, keys.LABEL, keys.EXAMPLE_ID)
    ds = builder.as_dataset(split=split, shuffle_files=False, read_config=tfds.ReadConfig(try_autocache=False))
    count = builder.info.splits[split].num_examples
    if input_context is not None:
        shards, shard = input_context.num_input_pipelines, input_context.input_pipeline_id
        ds = ds.filter(lambda example: example[keys.EXAMPLE_ID] % shards == shard)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.map(lambda example: {name: example[name] for name in wanted}, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        ds = ds.shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True)
    # Recordings differ in length: pad each batch to its longest with zeros (silence).
    ds = ds.padded_batch(batch_size)

    def to_features(batch):
        if mode == "model":
            features = {
                keys.IMAGE: tf.cast(batch[keys.IMAGE], tf.float32) / 255.0,
                keys.AUDIO: tf.cast(batch[keys.AUDIO], tf.float32) / INT16_SCALE,
                keys.TOKEN_IDS: tokenizer(batch[keys.TEXT]),
            }
        else:
            features = {name: batch[name] for name in (keys.IMAGE, keys.AUDIO, keys.TEXT)}
        if with_ids:
            features[keys.EXAMPLE_ID] = batch[keys.EXAMPLE_ID]
        return features, tf.cast(batch[keys.LABEL], tf.int32)

    ds = ds.map(to_features, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if input_context is not None else tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options)
