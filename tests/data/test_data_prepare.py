"""Preparing mnist_text fails cleanly: bad sources are named, interrupted runs leave nothing complete."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow_datasets as tfds
from zoo.datasets.mnist_text import generation
from zoo.datasets.mnist_text import mnist_files as mnist
from zoo.datasets.mnist_text import mnist_text_dataset_builder as builder_module

from zoo.data import pipeline


def _nothing_prepared(data_dir) -> bool:
    infos = [p for p in _walk(data_dir) if os.path.basename(p) == "dataset_info.json"]
    return not infos and not builder_module.Builder(data_dir=data_dir, config="vqa").is_prepared()


def _walk(root):
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def _incomplete_dirs(data_dir):
    return [d for d, _, _ in os.walk(data_dir) if "incomplete" in os.path.basename(d)]


def test_failure_during_generation_leaves_nothing_that_reads_as_prepared(
    tmp_path, monkeypatch, dummy_dir, dummy_checksums, dummy_splits
):
    calls = []

    def failing(digit, draws):
        calls.append(digit)
        if len(calls) == 30:
            raise RuntimeError("simulated crash in the middle of generation")
        return original(digit, draws)

    original = generation.vqa_example
    monkeypatch.setattr(generation, "vqa_example", failing)
    builder = builder_module.Builder(
        data_dir=tmp_path, config="vqa", source_dir=dummy_dir, source_checksums=dummy_checksums
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        builder.download_and_prepare()
    assert _nothing_prepared(tmp_path)
    assert not _incomplete_dirs(tmp_path), "TFDS removes its temporary folder when generation raises"
    with pytest.raises(AssertionError, match="could not find data"):
        tfds.load("mnist_text/vqa", split="train", data_dir=tmp_path, download=False)

    monkeypatch.setattr(generation, "vqa_example", original)
    fresh = builder_module.Builder(
        data_dir=tmp_path, config="vqa", source_dir=dummy_dir, source_checksums=dummy_checksums
    )
    fresh.download_and_prepare()
    assert {s: fresh.info.splits[s].num_examples for s in dummy_splits} == dummy_splits
    assert pipeline.num_examples("vqa", "train", tmp_path) == dummy_splits["train"]


def _official_copy(official_dir, target):
    target.mkdir()
    for stem in mnist.BASENAMES.values():
        shutil.copyfile(official_dir / (stem + ".gz"), target / (stem + ".gz"))
    return target


def test_truncated_source_file_is_named_and_nothing_is_prepared(tmp_path, official_dir):
    source = _official_copy(official_dir, tmp_path / "mnist")
    victim = source / "train-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:1_000_000])
    data_dir = tmp_path / "tfds"
    with pytest.raises(mnist.SourceFileError, match=r"train-images-idx3-ubyte\.gz.* is truncated: 1000000 bytes, expected 9912422"):
        pipeline.make_dataset("digits", "train", data_dir=data_dir, source_dir=source)
    assert _nothing_prepared(data_dir) and not _incomplete_dirs(data_dir)


def test_corrupted_source_file_found_through_zoo_data_dir(tmp_path, official_dir, monkeypatch):
    source = _official_copy(official_dir, tmp_path / "mnist")
    victim = source / "train-labels-idx1-ubyte.gz"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path))  # the parent, as in the offline data layout
    data_dir = tmp_path / "tfds"
    with pytest.raises(mnist.SourceFileError, match=r"train-labels-idx1-ubyte\.gz.* is corrupted"):
        tfds.load("mnist_text/vqa", split="test", data_dir=data_dir)
    assert _nothing_prepared(data_dir) and not _incomplete_dirs(data_dir)


def test_missing_source_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="source_dir=.*nowhere' is not a directory"):
        pipeline.make_dataset("vqa", "train", data_dir=tmp_path / "tfds", source_dir=tmp_path / "nowhere")


_KILLED_CHILD = textwrap.dedent(
    """
    import pathlib, sys, time
    from zoo.datasets.mnist_text import mnist_files as mnist
    from zoo.datasets.mnist_text import mnist_text_dataset_builder as m

    data_dir, source, ready = sys.argv[1:4]
    checksums = {p.name: mnist.file_info(p) for p in pathlib.Path(source).iterdir()}
    original = m.Builder._generate_examples
    written = [0]

    def stalling(self, *args, **kwargs):
        for item in original(self, *args, **kwargs):
            written[0] += 1
            if written[0] == 58:  # the whole train split and 3 validation examples
                pathlib.Path(ready).touch()
                time.sleep(600)
            yield item

    m.Builder._generate_examples = stalling
    m.Builder(data_dir=data_dir, config="vqa", source_dir=source, source_checksums=checksums).download_and_prepare()
    """
)


@pytest.mark.slow
def test_prepare_killed_halfway_leaves_nothing_complete(tmp_path, dummy_dir, dummy_checksums, dummy_splits):
    data_dir, ready = tmp_path / "tfds", tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, str(data_dir), str(dummy_dir), str(ready)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, f"the child exited early with {child.returncode}"
            assert time.monotonic() < deadline, "the child never reached the middle of the prepare"
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert _incomplete_dirs(data_dir), "the kill happened while TFDS was writing"
    assert _nothing_prepared(data_dir)

    # A fresh run prepares it completely despite the leftover temporary folder.
    fresh = builder_module.Builder(
        data_dir=data_dir, config="vqa", source_dir=dummy_dir, source_checksums=dummy_checksums
    )
    fresh.download_and_prepare()
    assert {s: fresh.info.splits[s].num_examples for s in dummy_splits} == dummy_splits
    ds = pipeline.make_dataset("vqa", "validation", data_dir=data_dir, mode="raw", with_ids=True)
    assert sum(len(label) for _, label in ds) == dummy_splits["validation"]


def test_no_source_and_failed_download_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)

    def offline(self, urls):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", offline)
    with pytest.raises(OSError, match="No MNIST folder was given .* Offline\\? Set ZOO_DATA_DIR"):
        pipeline.load_builder("digits", data_dir=tmp_path)
    assert _nothing_prepared(tmp_path) and not _incomplete_dirs(tmp_path)


def test_concurrent_first_use_prepares_once(tmp_path, monkeypatch, dummy_dir, dummy_checksums, dummy_splits):
    import threading

    monkeypatch.setattr(mnist, "OFFICIAL_CHECKSUMS", dummy_checksums)  # accept the dummy files as the source
    prepared = []
    original = builder_module.Builder._download_and_prepare

    def counting(self, *args, **kwargs):
        prepared.append(self.builder_config.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(builder_module.Builder, "_download_and_prepare", counting)
    errors = []

    def use():
        try:
            assert pipeline.num_examples("digits", "test", tmp_path, source_dir=dummy_dir) == dummy_splits["test"]
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert prepared == ["digits"], "the second caller waited for the first and reused its dataset"
