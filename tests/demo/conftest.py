"""Demo fixtures: a TFDS data dir prepared from the builder's dummy MNIST files (80 images)."""

import os
from pathlib import Path

import pytest
from zoo.datasets.mnist_text import mnist_files as mnist
from zoo.datasets.mnist_text import mnist_text_dataset_builder as builder_module

DUMMY_DIR = Path(os.fspath(builder_module.Builder.code_path.parent / "dummy_data"))


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> str:
    """Every config prepared from the dummy files, so demo runs need no real data and download nothing."""
    checksums = {path.name: mnist.file_info(path) for path in DUMMY_DIR.iterdir() if path.is_file()}
    data_dir = tmp_path_factory.mktemp("demo_tfds")
    for config in builder_module.CONFIG_NAMES:
        builder_module.Builder(
            data_dir=data_dir, config=config, source_dir=DUMMY_DIR, source_checksums=checksums
        ).download_and_prepare()
    return os.fspath(data_dir)
