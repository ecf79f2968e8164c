"""mnist_text built from the official MNIST files (ZOO_DATA_DIR): sizes, label counts, ceilings.

Preparing the three configs from 70,000 images takes about a minute, so these
are slow tests; they skip when the files are not there.
"""

import collections
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from zoo.datasets.mnist_text import mnist_files as mnist
from zoo.datasets.mnist_text import mnist_text_dataset_builder as builder_module

from zoo.data import ceilings, pipeline

pytestmark = pytest.mark.slow

SIZES = {"train": 55_000, "validation": 5_000, "test": 10_000}
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CARD = Path(builder_module.__file__).with_name("README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory, official_dir):
    """Every config prepared the default way: the files found through ZOO_DATA_DIR."""
    data_dir = tmp_path_factory.mktemp("tfds_real")
    for config in pipeline.CONFIGS:
        pipeline.load_builder(config, data_dir=data_dir)
    return data_dir


def _column(config, split, data_dir, field):
    builder = pipeline.load_builder(config, data_dir=data_dir)
    ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    return np.concatenate(list(ds.map(lambda e: e[field]).batch(8192).as_numpy_iterator()))


def _digit_counts(config, split, data_dir):
    labels = _column(config, split, data_dir, "label" if config == "digits" else "digit")
    return np.bincount(labels, minlength=10).tolist()


def test_split_sizes_and_label_counts(real_dir):
    for config in pipeline.CONFIGS:
        for split, size in SIZES.items():
            assert pipeline.num_examples(config, split, real_dir) == size, (config, split)
    train = _digit_counts("digits", "train", real_dir)
    validation = _digit_counts("digits", "validation", real_dir)
    assert (np.array(train) + validation).tolist() == TRAIN_COUNTS, "validation is carved from the official train set"
    assert min(validation) > 400, "every digit is in validation"
    assert _digit_counts("digits", "test", real_dir) == TEST_COUNTS
    for config in pipeline.TEXT_CONFIGS:
        assert _digit_counts(config, "validation", real_dir) == validation, "all configs share their splits"
        assert _digit_counts(config, "test", real_dir) == TEST_COUNTS


def test_vqa_answer_balance(real_dir):
    labels = _column("vqa", "train", real_dir, "label")
    answers = collections.Counter(pipeline.class_names("vqa")[label] for label in labels.tolist())
    assert 0.36 < answers["yes"] / SIZES["train"] < 0.39 and 0.36 < answers["no"] / SIZES["train"] < 0.39
    assert all(0.02 < answers[name] / SIZES["train"] < 0.03 for name in pipeline.class_names("caption"))


def _card_percent(label: str) -> float:
    match = re.search(re.escape(label) + r"[^|]*\|\s*([\d.]+)\s*%", CARD)
    assert match, f"the dataset card has no row {label!r}"
    return float(match[1])


def test_unimodal_ceilings_are_low_and_match_the_card(real_dir):
    vqa = ceilings.unimodal_ceilings("vqa", data_dir=real_dir)
    caption = ceilings.unimodal_ceilings("caption", data_dir=real_dir)
    assert vqa["text_only"] < 0.45 and vqa["image_only_oracle"] < 0.40, vqa
    assert caption["text_only"] < 0.60, caption
    assert _card_percent("vqa text-only") == pytest.approx(100 * vqa["text_only"], abs=0.05)
    assert _card_percent("vqa image-only (perfect digit recognition)") == pytest.approx(
        100 * vqa["image_only_oracle"], abs=0.05
    )
    assert _card_percent("caption text-only") == pytest.approx(100 * caption["text_only"], abs=0.05)


def test_manual_dir_path_gives_the_same_dataset(real_dir, official_dir, tmp_path, monkeypatch):
    # Without ZOO_DATA_DIR, TFDS's download manager finds the files in manual_dir
    # (checked against checksums.tsv) instead of downloading them.
    monkeypatch.delenv(mnist.ENV_VAR)
    config = tfds.download.DownloadConfig(manual_dir=str(official_dir))
    ds = tfds.load(
        "mnist_text/caption",
        split="test[:50]",
        data_dir=tmp_path,
        download_and_prepare_kwargs={"download_config": config},
    )
    reference = pipeline.load_builder("caption", data_dir=real_dir).as_dataset(split="test[:50]")
    for a, b in zip(tfds.as_numpy(ds), tfds.as_numpy(reference), strict=True):
        assert a["example_id"] == b["example_id"] and a["text"] == b["text"]
        np.testing.assert_array_equal(a["image"], b["image"])
