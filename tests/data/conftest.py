"""Shared data fixtures: the builder's dummy MNIST files and a TFDS data dir prepared from them."""

import os
from pathlib import Path

import pytest
from zoo.datasets.mnist_text import mnist_files as mnist
from zoo.datasets.mnist_text import mnist_text_dataset_builder as builder_module

DUMMY_DIR = Path(os.fspath(builder_module.Builder.code_path.parent / "dummy_data"))
# Dummy split sizes: 60 training images (5 of them validation) and 20 test images.
DUMMY_SPLITS = {"train": 55, "validation": 5, "test": 20}


@pytest.fixture(scope="session")
def dummy_splits() -> dict:
    return dict(DUMMY_SPLITS)


@pytest.fixture(scope="session")
def dummy_dir() -> Path:
    return DUMMY_DIR


@pytest.fixture(scope="session")
def dummy_checksums() -> dict:
    """Size and SHA-256 of the dummy files, to verify them like official ones."""
    return {path.name: mnist.file_info(path) for path in DUMMY_DIR.iterdir() if path.is_file()}


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory, dummy_checksums) -> str:
    """A TFDS data dir with every config prepared from the dummy files (read through `source_dir`)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    for config in builder_module.CONFIG_NAMES:
        builder = builder_module.Builder(
            data_dir=data_dir, config=config, source_dir=DUMMY_DIR, source_checksums=dummy_checksums
        )
        builder.download_and_prepare()
    return os.fspath(data_dir)


@pytest.fixture(scope="session")
def official_dir() -> Path:
    """The official MNIST files from ZOO_DATA_DIR; skips when they are not there."""
    root = os.environ.get(mnist.ENV_VAR)
    directory = mnist.resolve_source_dir(root) if root and os.path.isdir(root) else None
    if directory is None or not all((directory / (stem + ".gz")).is_file() for stem in mnist.BASENAMES.values()):
        pytest.skip(f"official MNIST files not found (set {mnist.ENV_VAR} to the offline data folder)")
    return directory
