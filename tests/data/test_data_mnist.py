"""Reading, verifying and fetching the official MNIST files (zoo.datasets.mnist_text.mnist_files)."""

import gzip
import shutil

import numpy as np
import pytest
from zoo.datasets.mnist_text import mnist_files as mnist

# Official per-class counts (train file, then test file).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_write_then_read_idx_round_trip(tmp_path, name):
    array = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    mnist.write_idx(tmp_path / name, array)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / name), array)
    assert not [p for p in tmp_path.iterdir() if p.name != name], "no temporary file is left behind"


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    mnist.write_idx(tmp_path / "labels.gz", array)
    (tmp_path / "labels.gz").rename(tmp_path / "labels")
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "labels"), array)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "header says (5,) = 5 values but the file holds 3"),
        (b"\x01\x02\x08\x01\x00\x00\x00\x01a", "is not an IDX file"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01a", "type code 0x0d"),
        (b"\x00\x00\x08\x03\x00\x00", "incomplete IDX header"),
        (gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")[:-6], "not a valid gzip stream"),
    ],
)
def test_read_idx_rejects_malformed_files_naming_them(tmp_path, content, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(mnist.SourceFileError, match="broken-idx1-ubyte") as info:
        mnist.read_idx(path)
    assert message in str(info.value)


def test_read_pair_checks_that_images_and_labels_agree(tmp_path):
    mnist.write_idx(tmp_path / "i", np.zeros((3, 28, 28), np.uint8))
    mnist.write_idx(tmp_path / "l", np.zeros(2, np.uint8))
    with pytest.raises(mnist.SourceFileError, match="3 images but .* 2 labels"):
        mnist.read_pair(tmp_path / "i", tmp_path / "l")
    mnist.write_idx(tmp_path / "l", np.array([0, 1, 12], np.uint8))
    with pytest.raises(mnist.SourceFileError, match="label 12; expected 0..9"):
        mnist.read_pair(tmp_path / "i", tmp_path / "l")
    mnist.write_idx(tmp_path / "i", np.zeros((3, 28, 27), np.uint8))
    with pytest.raises(mnist.SourceFileError, match=r"shape \(3, 28, 27\)"):
        mnist.read_pair(tmp_path / "i", tmp_path / "l")


def test_official_files_load_with_the_published_counts(official_dir):
    images, labels = mnist.load_split("test", official_dir)
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == TEST_COUNTS
    labels = mnist.read_idx(official_dir / "train-labels-idx1-ubyte.gz")
    assert np.bincount(labels, minlength=10).tolist() == TRAIN_COUNTS


def _copy_official(official_dir, tmp_path, roles=mnist.ROLES):
    for role in roles:
        name = mnist.BASENAMES[role] + ".gz"
        shutil.copyfile(official_dir / name, tmp_path / name)


def test_truncated_official_file_is_named_with_its_size(official_dir, tmp_path):
    _copy_official(official_dir, tmp_path, ("test_images", "test_labels"))
    victim = tmp_path / "t10k-labels-idx1-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:3000])
    with pytest.raises(mnist.SourceFileError, match=r"t10k-labels-idx1-ubyte\.gz.* is truncated: 3000 bytes, expected 4542"):
        mnist.load_split("test", tmp_path)


def test_corrupted_official_file_is_named_with_its_checksum(official_dir, tmp_path):
    _copy_official(official_dir, tmp_path, ("test_images", "test_labels"))
    victim = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(mnist.SourceFileError, match=r"t10k-images-idx3-ubyte\.gz.* is corrupted: SHA-256 [0-9a-f]{64}, expected 8d422c7b"):
        mnist.load_split("test", tmp_path)


def test_raw_official_files_are_accepted(official_dir, tmp_path):
    for role in ("test_images", "test_labels"):
        stem = mnist.BASENAMES[role]
        (tmp_path / stem).write_bytes(gzip.decompress((official_dir / (stem + ".gz")).read_bytes()))
    images, labels = mnist.load_split("test", tmp_path)
    assert images.shape == (10_000, 28, 28) and np.bincount(labels, minlength=10).tolist() == TEST_COUNTS


def test_missing_file_and_directory_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\.gz .*not found in"):
        mnist.load_split("test", tmp_path)
    with pytest.raises(FileNotFoundError, match="source_dir='/no/such/dir' is not a directory"):
        mnist.load_split("test", "/no/such/dir")
    monkeypatch.setenv(mnist.ENV_VAR, "/no/such/dir")
    with pytest.raises(FileNotFoundError, match="ZOO_DATA_DIR='/no/such/dir' is not a directory"):
        mnist.resolve_source_dir()
    monkeypatch.delenv(mnist.ENV_VAR)
    assert mnist.resolve_source_dir() is None
    with pytest.raises(ValueError, match="ZOO_DATA_DIR is not set"):
        mnist.load_split("test")
    with pytest.raises(ValueError, match="Unknown MNIST split 'dev'"):
        mnist.load_split("dev", tmp_path)


def test_resolve_source_dir_accepts_the_files_folder_or_its_parent(tmp_path, monkeypatch, dummy_dir):
    nested = tmp_path / "mnist"
    shutil.copytree(dummy_dir, nested)
    assert mnist.resolve_source_dir(tmp_path) == nested
    assert mnist.resolve_source_dir(nested) == nested
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path))
    assert mnist.resolve_source_dir() == nested


def _mirror(tmp_path, name, files):
    directory = tmp_path / name
    directory.mkdir()
    for file_name, data in files.items():
        (directory / file_name).write_bytes(data)
    return directory.as_uri() + "/"


def test_download_tries_mirrors_until_a_verified_copy(tmp_path, dummy_dir, dummy_checksums):
    good = {p.name: p.read_bytes() for p in dummy_dir.iterdir()}
    bad = {name: data[:-1] + bytes([data[-1] ^ 1]) for name, data in good.items()}
    mirrors = [
        _mirror(tmp_path, "empty", {}),  # every file missing
        _mirror(tmp_path, "corrupt", bad),  # wrong checksums
        _mirror(tmp_path, "good", good),
    ]
    target = tmp_path / "out"
    paths = mnist.download(target, mirrors=mirrors, checksums=dummy_checksums)
    assert {p.name for p in paths.values()} == set(good)
    for path in paths.values():
        assert path.read_bytes() == good[path.name]
    assert sorted(p.name for p in target.iterdir()) == sorted(good), "no partial download left behind"
    # Present and intact: not fetched again (the only mirror now is empty).
    assert mnist.download(target, mirrors=mirrors[:1], checksums=dummy_checksums) == paths


def test_download_failure_lists_every_attempt_and_keeps_nothing(tmp_path, dummy_dir, dummy_checksums):
    good = {p.name: p.read_bytes() for p in dummy_dir.iterdir()}
    truncated = {name: data[:10] for name, data in good.items()}
    mirrors = [_mirror(tmp_path, "empty", {}), _mirror(tmp_path, "truncated", truncated)]
    target = tmp_path / "out"
    with pytest.raises(OSError, match=r"Could not fetch an intact train-images-idx3-ubyte\.gz") as info:
        mnist.download(target, mirrors=mirrors, checksums=dummy_checksums)
    assert "empty/train-images-idx3-ubyte.gz" in str(info.value)
    assert "truncated/train-images-idx3-ubyte.gz: downloaded train-images-idx3-ubyte.gz has 10 bytes" in str(info.value)
    assert list(target.iterdir()) == []


def test_verify_command(official_dir, tmp_path, capsys):
    assert mnist.main(["verify", str(official_dir)]) == 0
    assert capsys.readouterr().out.count("ok ") == 4
    assert mnist.main(["verify", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err
