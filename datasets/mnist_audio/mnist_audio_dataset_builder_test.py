"""mnist_audio on dummy data: 100 train and 20 test MNIST-format images of digits 0-1
that the test writes, paired with fsdd's 18 dummy WAVs."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from zoo.datasets.fsdd import fsdd_dataset_builder
from zoo.datasets.fsdd import fsdd_files as fsdd
from zoo.datasets.mnist_audio import generation
from zoo.datasets.mnist_audio import mnist_audio_dataset_builder as builder_module
from zoo.datasets.mnist_text import mnist_files as mnist

FSDD_DUMMY = fsdd_dataset_builder.Builder.code_path.parent / "dummy_data"


@pytest.fixture
def builder(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 100), ("test", 20)):
        mnist.write_idx(tmp_path / f"{mnist.BASENAMES[split + '_images']}.gz", rng.integers(0, 256, (n, 28, 28), np.uint8))
        mnist.write_idx(tmp_path / f"{mnist.BASENAMES[split + '_labels']}.gz", (np.arange(n) % 2).astype(np.uint8))
    checksums = {p.name: mnist.file_info(p) for p in tmp_path.glob("*.gz")}
    b = builder_module.Builder(data_dir=tmp_path / "tfds", config="av", mnist_dir=tmp_path, mnist_checksums=checksums,
                               fsdd_dir=FSDD_DUMMY, fsdd_checksums=fsdd.load_checksums(FSDD_DUMMY / "recordings.tsv"))
    b.download_and_prepare(
        download_config=tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)
    )
    return b


def test_pairs_each_kept_image_with_a_same_digit_recording_of_its_split(builder):
    takes = {r.example_id: r.take for r in fsdd.load_recordings(FSDD_DUMMY, checksums=fsdd.load_checksums(FSDD_DUMMY / "recordings.tsv"))}
    ids = {}
    for split in generation.SPLITS:
        examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
        ids[split] = {int(e["example_id"]) for e in examples}
        assert all(generation.kept(i) for i in ids[split])
        for e in examples:
            recording = int(e["recording_id"])
            assert recording // 300 == e["label"], "the recording says the image's digit"
            assert fsdd.split_of("", takes[recording]) == split, "no recording crosses splits"
            assert len(e["audio"]) == e["length"] and e["image"].shape == (28, 28, 1) and e["text"]
    assert len(ids["test"]) == 4 and len(ids["train"]) + len(ids["validation"]) == 20
    assert not ids["train"] & ids["validation"]
