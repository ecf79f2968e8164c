"""tf.data pipelines over the mnist_text TFDS datasets.

`make_dataset` returns batches of `(features, label)`: model-ready (`image`
float32 in [0, 1], `token_ids` int32) or raw (`image` uint8, `text` string).
The dataset is read through its TFDS builder, prepared once into a TFDS data
directory (`~/tensorflow_datasets` unless given) from the official MNIST files
(see `zoo.datasets.mnist_text.mnist_files` for where they are looked for).

Order of operations and why:
read (files in order) → shard (by example id, one shard per input pipeline,
so workers see disjoint data) → cache (decoded uint8, so later epochs skip PNG decoding) →
seeded shuffle over the whole shard → repeat → batch (per replica) →
vectorized map (scaling and tokenization once per batch, not per example) →
prefetch.

>>> from zoo.data import make_dataset
>>> ds = make_dataset("vqa", "train[:1000]", batch_size=64)
>>> features, label = next(iter(ds))
>>> features["image"].shape, features["token_ids"].shape, label.shape
(TensorShape([64, 28, 28, 1]), TensorShape([64, 32]), TensorShape([64]))
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import re

import tensorflow as tf
import tensorflow_datasets as tfds

from zoo.core import keys
from zoo.data.text import Tokenizer, build_vocabulary

# Importing the builder registers it with TFDS.
from zoo.datasets.mnist_text import generation as _rules
from zoo.datasets.mnist_text import mnist_text_dataset_builder as _mnist_text

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

CONFIGS = _rules.CONFIG_NAMES
TEXT_CONFIGS = _rules.TEXT_CONFIGS
SPLITS = _rules.SPLITS
MODES = ("model", "raw")
EXAMPLE_ID = keys.EXAMPLE_ID

_SPLIT_RE = re.compile(r"^(train|validation|test)(\[[^\]]*\])?$")


def class_names(config: str) -> list[str]:
    """What each label id of a config means (its answer or digit name).

    Raises:
        ValueError: for an unknown config.
    """
    _check_config(config)
    return list(_rules.CLASS_NAMES[config])


# The configs whose texts describe the class of their image, so that every
# text the rules can write for a class is a zero-shot prompt for it.
PROMPT_CONFIGS = ("describe",)


def class_prompts(config: str) -> dict[str, list[str]]:
    """Zero-shot prompts of a config: {class name: every text its rules can write for that class}, in label order.

    A dual encoder trained on the config classifies an image by the class
    whose prompts' mean embedding is nearest (the demo's zero-shot figure and
    the `serving_default` of its SavedModel).

    Raises:
        ValueError: an unknown config, or one whose texts do not name the
            class (vqa asks questions; caption texts may hide the digit),
            naming the configs that have prompts.
    """
    _check_config(config)
    if config not in PROMPT_CONFIGS:
        raise ValueError(
            f"Data config {config!r} has no zero-shot prompts: its texts do not describe the class of their "
            f"image. Configs with prompts: {list(PROMPT_CONFIGS)}."
        )
    from zoo.datasets.mnist_text import describe

    return {name: describe.all_descriptions(digit) for digit, name in enumerate(_rules.CLASS_NAMES[config])}


def load_builder(config: str, *, data_dir=None, source_dir=None) -> tfds.core.DatasetBuilder:
    """Returns the TFDS builder of a config, preparing the dataset first if needed.

    Preparation happens once per data directory and is atomic: TFDS writes into
    a temporary folder renamed at the end, so an interrupted run leaves nothing
    that reads as prepared. A lock file keeps concurrent processes from
    preparing the same config twice.

    Args:
        config: "vqa", "caption" or "digits".
        data_dir: TFDS data directory; None = TFDS's default (`~/tensorflow_datasets`
            or `TFDS_DATA_DIR`).
        source_dir: folder of the official MNIST files; None = `ZOO_DATA_DIR`, then
            TFDS's download manager (see `zoo.datasets.mnist_text.mnist_files`).

    Raises:
        ValueError: for an unknown config.
        FileNotFoundError, zoo.datasets.mnist_text.mnist_files.SourceFileError: for missing or bad MNIST files.
    """
    _check_config(config)
    builder = _mnist_text.Builder(data_dir=data_dir, config=config, source_dir=source_dir)
    if builder.is_prepared():
        return builder
    with _prepare_lock(builder):
        # Another process may have prepared it while this one waited for the lock.
        builder = _mnist_text.Builder(data_dir=data_dir, config=config, source_dir=source_dir)
        if not builder.is_prepared():
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)
            )
    return builder


@contextlib.contextmanager
def _prepare_lock(builder):
    lock_dir = os.path.dirname(os.fspath(builder.data_dir))
    if fcntl is None or "://" in lock_dir:  # no POSIX locks on this platform or file system
        yield
        return
    # data_dir is <root>/mnist_text/<config>/<version>; lock beside the version folder.
    os.makedirs(lock_dir, exist_ok=True)
    with open(os.path.join(lock_dir, f".{builder.version}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def num_examples(config: str, split: str, data_dir=None, *, source_dir=None) -> int:
    """Number of examples in a split (slices such as "train[:1000]" accepted).

    Raises:
        ValueError: for an unknown config or split.
    """
    _check_config(config)
    _check_split(split)
    return int(load_builder(config, data_dir=data_dir, source_dir=source_dir).info.splits[split].num_examples)


def fit_vocabulary(config: str, *, data_dir=None, max_tokens: int | None = None, source_dir=None) -> list[str]:
    """Builds the vocabulary of a config's texts from its train split only.

    Deterministic: words by decreasing count, ties alphabetical, after the two
    reserved entries (padding, `[UNK]`). Save it with
    `zoo.data.save_vocabulary` so it travels with a run.

    Args:
        config: "vqa" or "caption" (the configs with text).
        data_dir, source_dir: see `load_builder`.
        max_tokens: total size including the reserved entries; None = all words.

    Returns:
        The token list.

    Raises:
        ValueError: for an unknown config or one without text.
    """
    _check_config(config)
    if config not in TEXT_CONFIGS:
        raise ValueError(f"config {config!r} has no text to fit a vocabulary on; expected one of {list(TEXT_CONFIGS)}.")
    builder = load_builder(config, data_dir=data_dir, source_dir=source_dir)
    info_file = os.path.join(os.fspath(builder.data_dir), "dataset_info.json")
    # The prepared folder and its info file's timestamp identify the data: a
    # dataset deleted and prepared again in the same place is fitted again.
    stamp = (os.fspath(builder.data_dir), os.stat(info_file).st_mtime_ns)
    return list(_fit_vocabulary(os.fspath(builder.data_dir_root), config, max_tokens, stamp))


@functools.lru_cache(maxsize=16)
def _fit_vocabulary(data_dir: str, config: str, max_tokens: int | None, stamp) -> tuple[str, ...]:
    builder = _mnist_text.Builder(data_dir=data_dir, config=config)
    # Images stay encoded: only the texts are needed.
    ds = builder.as_dataset(split="train", shuffle_files=False, decoders={keys.IMAGE: tfds.decode.SkipDecoding()})
    texts = ds.map(lambda example: example[keys.TEXT]).batch(4096)
    return tuple(build_vocabulary((text for batch in texts.as_numpy_iterator() for text in batch), max_tokens=max_tokens))


def make_dataset(
    config: str,
    split: str,
    *,
    data_dir=None,
    batch_size: int = 128,
    mode: str = "model",
    tokenizer: Tokenizer | None = None,
    max_length: int = 32,
    shuffle: bool | None = None,
    seed: int = 0,
    deterministic: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    repeat: bool = False,
    with_ids: bool = False,
    drop_remainder: bool = False,
    source_dir=None,
) -> tf.data.Dataset:
    """Batches of `(features, label)` from an mnist_text config.

    Args:
        config: "vqa" (label = answer), "caption" (label = digit) or "digits"
            (plain MNIST; image feature only).
        split: "train", "validation" or "test", or a TFDS slice of one ("train[:1000]").
        data_dir: TFDS data directory (see `load_builder`).
        batch_size: global batch size; with `input_context`, each pipeline batches
            `input_context.get_per_replica_batch_size(batch_size)` examples.
        mode: "model": `image` float32 [B, 28, 28, 1] in [0, 1] and `token_ids`
            int32 [B, max_length]; "raw": `image` uint8 [B, 28, 28, 1] and
            `text` string [B] (the inputs of an exported serving graph).
        tokenizer: maps texts to ids in "model" mode; None = a vocabulary fitted on
            this config's train split (`fit_vocabulary`). A
            `zoo.data.hub_text.BackboneTokenizer` gives a KerasHub backbone's
            inputs (`token_ids`, `padding_mask`, `segment_ids`) instead.
        max_length: token sequence length; must equal `tokenizer.max_length` if given.
        shuffle: seeded shuffle over the whole split, new order each epoch; None =
            True for train, False otherwise.
        seed: shuffle seed.
        deterministic: True = order and content bit-reproducible for a seed.
            False lets parallel steps emit out of order (faster), so two passes
            may differ in order even unshuffled: pair predictions with labels
            within one pass, or pass True.
        input_context: from `strategy.distribute_datasets_from_function`: keep
            the examples whose id modulo `num_input_pipelines` is
            `input_pipeline_id` (disjoint shards that cover the split, within 1%
            of equal size; for synchronous training over workers use
            `repeat=True` and a fixed number of steps) and batch at the
            per-replica size. Without it, the auto-shard policy is DATA.
        repeat: repeat forever; the element stream still covers each epoch exactly
            once before the next begins (batches may straddle epochs).
        with_ids: add `features["example_id"]` int64, stable per example.
        drop_remainder: drop a last partial batch (static batch dimension).
        source_dir: folder of the official MNIST files, used if the dataset must be
            prepared (see `zoo.datasets.mnist_text.mnist_files`).

    Returns:
        A `tf.data.Dataset` of `(features dict, label int32 [B])`.

    Raises:
        ValueError: for an unknown config, split or mode, a bad batch size or
            max_length, a tokenizer whose max_length differs, or a tokenizer
            given for "digits".
    """
    _check_config(config)
    _check_split(split)
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; expected one of {list(MODES)}.")
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("max_length", max_length)
    if input_context is not None and not isinstance(input_context, tf.distribute.InputContext):
        raise ValueError(f"input_context must be a tf.distribute.InputContext; got {type(input_context).__name__}.")
    has_text = config in TEXT_CONFIGS
    if tokenizer is not None:
        if not has_text:
            raise ValueError(f"config {config!r} has no text, so tokenizer must be None; got {tokenizer!r}.")
        if tokenizer.max_length != max_length:
            raise ValueError(
                f"tokenizer.max_length={tokenizer.max_length} differs from max_length={max_length}; "
                f"pass max_length={tokenizer.max_length} or a tokenizer of length {max_length}."
            )
    if shuffle is None:
        shuffle = split.startswith("train")

    builder = load_builder(config, data_dir=data_dir, source_dir=source_dir)
    if mode == "model" and has_text and tokenizer is None:
        tokenizer = Tokenizer(fit_vocabulary(config, data_dir=data_dir, source_dir=source_dir), max_length)

    wanted = [keys.IMAGE, keys.LABEL, EXAMPLE_ID] + ([keys.TEXT] if has_text else [])
    ds = builder.as_dataset(
        split=split, shuffle_files=False, read_config=tfds.ReadConfig(try_autocache=False, skip_prefetch=True)
    )
    count = builder.info.splits[split].num_examples
    per_replica_batch = batch_size
    if input_context is not None:
        # By example id, not by position: with deterministic=False the read order
        # varies between pipelines, and positional shards would then overlap.
        num_shards, shard = input_context.num_input_pipelines, input_context.input_pipeline_id
        ds = ds.filter(lambda example: example[EXAMPLE_ID] % num_shards == shard)
        count = -(-count // num_shards)
        per_replica_batch = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.map(lambda example: {name: example[name] for name in wanted}, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(per_replica_batch, drop_remainder=drop_remainder)

    def to_features(batch):
        label = tf.cast(batch[keys.LABEL], tf.int32)
        if mode == "model":
            features = {keys.IMAGE: tf.cast(batch[keys.IMAGE], tf.float32) / 255.0}
            if has_text:
                encoded = tokenizer(batch[keys.TEXT])
                # A backbone's tokenizer (zoo.data.hub_text) gives several inputs by name.
                features.update(encoded if isinstance(encoded, dict) else {keys.TOKEN_IDS: encoded})
        else:
            features = {keys.IMAGE: batch[keys.IMAGE]}
            if has_text:
                features[keys.TEXT] = batch[keys.TEXT]
        if with_ids:
            features[EXAMPLE_ID] = batch[EXAMPLE_ID]
        return features, label

    ds = ds.map(to_features, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)

    options = tf.data.Options()
    options.deterministic = deterministic
    # With an input context the shard is already this pipeline's. Without one,
    # DATA makes each worker keep its share of elements: a split may be a single
    # file, which FILE sharding cannot divide among workers.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if input_context is not None else tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options)


def _check_config(config) -> None:
    if config not in CONFIGS:
        raise ValueError(f"Unknown config {config!r}; expected one of {list(CONFIGS)}.")


def check_split(config: str, split: str) -> None:
    """Checks a config name and a split (a name or a TFDS slice of one) without reading any data.

    Args:
        config: "vqa", "caption" or "digits".
        split: "train", "validation" or "test", or a slice such as "train[:1000]",
            "train[10%:]" or "test[-500:]".

    Raises:
        ValueError: naming the config or split received and what is allowed
            (with a suggestion for a misspelt split name).
    """
    _check_config(config)
    _check_split(split)


def _check_split(split) -> None:
    match = _SPLIT_RE.match(split) if isinstance(split, str) else None
    if match is None:
        name = split.split("[", 1)[0] if isinstance(split, str) else split
        close = difflib.get_close_matches(str(name), SPLITS, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0] + split[len(name):]!r}?" if close and isinstance(split, str) else ""
        raise ValueError(
            f"Unknown split {split!r}.{hint} Expected one of {', '.join(SPLITS)} or a TFDS slice of one, "
            "e.g. 'train[:1000]' or 'train[10%:]'."
        )
    if match.group(2):
        try:
            tfds.core.ReadInstruction.from_spec(split)
        except (ValueError, AssertionError):
            raise ValueError(
                f"Split {split!r} has a malformed slice {match.group(2)!r}: expected [FROM:TO] with integers or "
                "percentages, e.g. 'train[:1000]', 'train[10%:]' or 'test[-500:]'."
            ) from None


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive int.")
