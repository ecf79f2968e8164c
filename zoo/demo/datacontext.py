"""The data side of a demo trial: which slices are read and what a config's models need to know."""

from __future__ import annotations

import dataclasses
import functools
import os

import tensorflow as tf

from zoo.core import keys

__all__ = ["Splits", "FULL_SPLITS", "QUICK_SPLITS", "DataContext", "prepare_data", "longest_text"]


@dataclasses.dataclass(frozen=True)
class Splits:
    """How many examples of each split a run reads: the first N, or all (None).

    A count larger than the split means the whole split.
    """

    train: int | None = None
    validation: int | None = None
    test: int | None = None

    def __post_init__(self):
        for name in ("train", "validation", "test"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"Splits.{name}={value!r}: expected a positive int or None.")


FULL_SPLITS = Splits()
QUICK_SPLITS = Splits(train=384, validation=128, test=256)


@dataclasses.dataclass
class DataContext:
    """What every model trained on one config needs to know about its data.

    Attributes:
        config: the config name.
        class_names: what each label id means.
        vocabulary: the token list (text configs), fitted on the train split.
        max_length: tokens per text: the longest text of any split, so nothing
            is truncated (text configs).
        data_dir: the TFDS data directory (None = TFDS's default).
        source_dir: where the official MNIST files are (None = `ZOO_DATA_DIR`).
    """

    config: str
    class_names: list[str]
    vocabulary: list[str] | None
    max_length: int | None
    data_dir: str | None = None
    source_dir: str | None = None

    @functools.cached_property
    def tokenizer(self):
        from zoo.data.text import Tokenizer

        return None if self.vocabulary is None else Tokenizer(self.vocabulary, self.max_length)

    @property
    def has_text(self) -> bool:
        return self.vocabulary is not None

    def split(self, name: str, limit: int | None = None) -> str:
        """The TFDS split string for the first `limit` examples of split `name` (all when None or more)."""
        from zoo.data import pipeline

        if limit is None:
            return name
        available = pipeline.num_examples(self.config, name, data_dir=self.data_dir, source_dir=self.source_dir)
        return name if limit >= available else f"{name}[:{limit}]"

    def dataset(self, split: str, *, batch_size: int, shuffle: bool = False, seed: int = 0, mode: str = "model",
                input_context=None, deterministic: bool = True) -> tf.data.Dataset:
        """`zoo.data.pipeline.make_dataset` for this config with its tokenizer and text length."""
        from zoo.data import pipeline

        text_args = {"max_length": self.max_length} if self.has_text else {}
        if self.has_text and mode == "model":
            text_args["tokenizer"] = self.tokenizer
        return pipeline.make_dataset(
            self.config, split, data_dir=self.data_dir, source_dir=self.source_dir, batch_size=batch_size,
            mode=mode, shuffle=shuffle, seed=seed, deterministic=deterministic, input_context=input_context,
            **text_args,
        )


def longest_text(config: str, *, data_dir=None, source_dir=None) -> int:
    """The largest number of words in any text of a config (all splits).

    Raises:
        ValueError: for a config without text.
    """
    import tensorflow_datasets as tfds

    from zoo.data import pipeline
    from zoo.data.text import split_words

    if config not in pipeline.TEXT_CONFIGS:
        raise ValueError(f"config {config!r} has no text; expected one of {list(pipeline.TEXT_CONFIGS)}.")
    def text_of(example):
        return example[keys.TEXT]

    def most_words(texts):
        return tf.reduce_max(split_words(texts).row_lengths())

    builder = pipeline.load_builder(config, data_dir=data_dir, source_dir=source_dir)
    longest = 0
    for split in pipeline.SPLITS:
        ds = builder.as_dataset(split=split, shuffle_files=False, decoders={keys.IMAGE: tfds.decode.SkipDecoding()})
        ds = ds.map(text_of).batch(8192).map(most_words)
        for value in ds.as_numpy_iterator():
            longest = max(longest, int(value))
    return longest


def prepare_data(config: str, *, data_dir=None, source_dir=None) -> DataContext:
    """Prepares a config (once per data directory) and fits its vocabulary and text length.

    Args:
        config: "vqa", "caption" or "digits".
        data_dir: TFDS data directory; None = TFDS's default.
        source_dir: folder of the official MNIST files; None = `ZOO_DATA_DIR`.

    Returns:
        A `DataContext`.

    Raises:
        ValueError: for an unknown config.
        FileNotFoundError: if the MNIST files cannot be found.
    """
    from zoo.data import pipeline

    data_dir = os.fspath(data_dir) if data_dir is not None else None
    source_dir = os.fspath(source_dir) if source_dir is not None else None
    names = pipeline.class_names(config)
    pipeline.load_builder(config, data_dir=data_dir, source_dir=source_dir)
    if config not in pipeline.TEXT_CONFIGS:
        return DataContext(config, names, None, None, data_dir, source_dir)
    vocabulary = pipeline.fit_vocabulary(config, data_dir=data_dir, source_dir=source_dir)
    length = longest_text(config, data_dir=data_dir, source_dir=source_dir)
    return DataContext(config, names, vocabulary, length, data_dir, source_dir)
