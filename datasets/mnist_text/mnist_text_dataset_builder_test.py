"""mnist_text on its dummy data: the first 60 official training and 20 test images.

The checks of `tfds.testing.DatasetBuilderTestCase` (whose module needs `dill`,
not a dependency of the zoo): every config prepares through TFDS's download
manager with the download mocked to `dummy_data/`, reads back with the declared
features, has the expected split sizes, keeps splits disjoint, reloads from
disk, and only fetches URLs listed in checksums.tsv.
"""

import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import dataset_metadata
from zoo.datasets.mnist_text import mnist_files as mnist
from zoo.datasets.mnist_text import mnist_text_dataset_builder as builder_module

Builder = builder_module.Builder
DUMMY_DATA = Builder.code_path.parent / "dummy_data"
# 60 // 12 = 5 training images go to validation.
SPLITS = {"train": 55, "validation": 5, "test": 20}


@pytest.fixture
def fetched_urls(monkeypatch):
    """Routes TFDS downloads to dummy_data/ and records the URLs asked for."""
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    urls = []
    by_url = {url: DUMMY_DATA / (mnist.BASENAMES[role] + ".gz") for role, url in mnist.URLS.items()}

    def download(self, url_or_urls):
        urls.extend(tf.nest.flatten(url_or_urls))
        return tf.nest.map_structure(by_url.__getitem__, url_or_urls)

    with mock.patch.object(tfds.download.DownloadManager, "download", download):
        yield urls


def _prepare(config, data_dir):
    builder = Builder(data_dir=data_dir, config=config)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)
    )
    return builder


def _as_numpy(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


@pytest.mark.parametrize("config", builder_module.CONFIG_NAMES)
def test_prepare_and_read_dummy_data(config, tmp_path, fetched_urls):
    builder = _prepare(config, tmp_path)

    assert sorted(fetched_urls) == sorted(mnist.URLS.values())
    assert set(fetched_urls) <= set(Builder.url_infos), "every fetched URL needs an entry in checksums.tsv"
    ids = {}
    for split, expected in SPLITS.items():
        ds = builder.as_dataset(split=split)
        tensor_info = builder.info.features.get_tensor_info()
        for key, spec in ds.element_spec.items():
            assert spec.dtype == tensor_info[key].dtype, key
            assert tuple(spec.shape) == tuple(tensor_info[key].shape), key
        examples = _as_numpy(builder, split)
        assert len(examples) == expected == builder.info.splits[split].num_examples
        ids[split] = {int(e["example_id"]) for e in examples}
        assert len(ids[split]) == expected
        for example in examples:
            assert example["image"].shape == (28, 28, 1) and example["image"].dtype == np.uint8
            if config in builder_module.TEXT_CONFIGS:
                assert example["text"], "every text config example has a text"
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"] and not ids["validation"] & ids["test"]
    assert ids["test"] == set(range(60, 80)), "test examples keep their index in the official test file, offset by 60"

    reloaded = Builder(data_dir=tmp_path, config=config)
    assert reloaded.is_prepared()
    assert {s: reloaded.info.splits[s].num_examples for s in SPLITS} == SPLITS
    assert _as_numpy(reloaded, "test")[0]["example_id"] == _as_numpy(builder, "test")[0]["example_id"]


def test_registration_and_metadata():
    assert "mnist_text" in tfds.list_builders(with_community_datasets=False)
    assert Builder.name == "mnist_text"
    assert [c.name for c in Builder.BUILDER_CONFIGS] == list(builder_module.CONFIG_NAMES)
    metadata = Builder.get_metadata()
    assert not set(metadata.tags) - set(dataset_metadata.valid_tags())
    assert metadata.description and "## Generation rules" in metadata.description
    assert metadata.citation and "lecun" in metadata.citation.lower()


def test_checksums_tsv_matches_the_official_table():
    for role, url in mnist.URLS.items():
        info = Builder.url_infos[url]
        name = mnist.BASENAMES[role] + ".gz"
        assert info.filename == name
        assert (info.size, info.checksum) == (mnist.OFFICIAL_CHECKSUMS[name].size, mnist.OFFICIAL_CHECKSUMS[name].sha256)


def test_dummy_data_is_a_prefix_of_the_official_files():
    # The dummy files are the first images of the real ones, so they look like MNIST.
    train_images, train_labels = mnist.read_pair(
        DUMMY_DATA / "train-images-idx3-ubyte.gz", DUMMY_DATA / "train-labels-idx1-ubyte.gz"
    )
    assert train_images.shape == (60, 28, 28) and train_labels.shape == (60,)
    source = os.environ.get(mnist.ENV_VAR)
    directory = mnist.resolve_source_dir(source) if source else None
    if directory is None or not (directory / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"official MNIST files not found (set {mnist.ENV_VAR})")
    official = mnist.read_idx(directory / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(train_labels, official[:60])
