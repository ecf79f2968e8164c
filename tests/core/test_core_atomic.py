"""Atomic directory and .keras writes: all or nothing, overwrite only when asked."""

import errno
import os
import stat

import keras
import numpy as np
import pytest

from zoo.core import atomic
from zoo.core.atomic import atomic_directory, atomic_save_model, atomic_write_bytes


def _write(directory, name, text):
    with open(os.path.join(directory, name), "w") as f:
        f.write(text)


def _leftovers(parent):
    return [n for n in os.listdir(parent) if ".tmp-" in n or ".old-" in n]


def test_directory_created_and_refused_when_it_exists(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)  # beside the target: same file system
        _write(tmp, "a.txt", "one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_directory(target):
            pass
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_overwrite_replaces_whole_directory(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        _write(tmp, "old.txt", "old")
    with atomic_directory(target, overwrite=True) as tmp:
        _write(tmp, "new.txt", "new")
    assert sorted(os.listdir(target)) == ["new.txt"]
    assert _leftovers(tmp_path) == []


def test_failure_inside_block_keeps_previous_directory(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        _write(tmp, "good.txt", "good")
    with pytest.raises(OSError) as caught:
        with atomic_directory(target, overwrite=True) as tmp:
            _write(tmp, "partial.txt", "par")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.errno == errno.ENOSPC
    assert sorted(os.listdir(target)) == ["good.txt"]
    assert (target / "good.txt").read_text() == "good"
    assert _leftovers(tmp_path) == []


def test_second_rename_failure_restores_previous(tmp_path, monkeypatch):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        _write(tmp, "good.txt", "good")
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def failing_rename(src, dst):
        if ".tmp-" in os.fspath(src):
            raise OSError(errno.EIO, "simulated I/O error")
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", failing_rename)
    with pytest.raises(OSError, match="simulated"):
        with atomic_directory(target, overwrite=True) as tmp:
            _write(tmp, "new.txt", "new")
    monkeypatch.undo()
    assert sorted(os.listdir(target)) == ["good.txt"]
    assert _leftovers(tmp_path) == []


def test_refuses_to_replace_a_file_with_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        with atomic_directory(tmp_path / "f", overwrite=True):
            pass


def test_write_bytes(tmp_path):
    atomic_write_bytes(tmp_path / "b.bin", b"abc")
    atomic_write_bytes(tmp_path / "b.bin", b"xyz")
    assert (tmp_path / "b.bin").read_bytes() == b"xyz"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(tmp_path / "b.bin", b"new", overwrite=False)
    assert _leftovers(tmp_path) == []


def _small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,), name="image")
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(inputs))


def test_save_model_enospc_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    first = _small_model(0)
    atomic_save_model(first, path)
    with pytest.raises(FileExistsError):
        atomic_save_model(first, path)
    second = _small_model(1)

    def save_half_then_fail(filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device", filepath)

    monkeypatch.setattr(second, "save", save_half_then_fail)
    with pytest.raises(OSError) as caught:
        atomic_save_model(second, path, overwrite=True)
    assert caught.value.errno == errno.ENOSPC
    reloaded = keras.saving.load_model(path)
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), first.predict(x, verbose=0))
    assert _leftovers(tmp_path) == []


def test_save_model_overwrite_and_suffix(tmp_path):
    path = tmp_path / "model.keras"
    atomic_save_model(_small_model(0), path)
    second = _small_model(1)
    atomic_save_model(second, path, overwrite=True)
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), second.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"must end with '\.keras'"):
        atomic_save_model(second, tmp_path / "model.h5")


def test_written_files_and_directories_get_the_umask_modes_not_the_temporary_ones(tmp_path):
    # mkstemp/mkdtemp create 0600/0700; a shared export must be readable like any other file.
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "export") as tmp:
            with open(os.path.join(tmp, "data.txt"), "w") as handle:
                handle.write("x")
        atomic_write_bytes(tmp_path / "file.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "export").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "file.bin").st_mode) == 0o644
