"""Where an export may go: `overwrite` replaces only a previous export; killed exports leave no temporaries."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from export_helpers import VOCABULARY

import zoo
from zoo.core import atomic
from zoo.export import NotAnExportError


def _tree(root):
    """Every path under `root` with its bytes' hash (files) or None (folders), to compare trees."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), root)] = None
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                found[os.path.relpath(os.path.join(directory, name), root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def _export(model, path, **kwargs):
    return zoo.export_model(model, path, vocabulary=VOCABULARY, **kwargs)


def test_overwrite_refuses_a_folder_that_is_not_an_export(tiny_model, tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "b.txt").write_text("b")
    (out / "data" / "x.bin").write_bytes(b"\x00\x01")
    before = _tree(out)
    with pytest.raises(NotAnExportError) as caught:
        _export(tiny_model, out, overwrite=True)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{str(out)!r} holds 3 items (b.txt, data/, notes.txt) and is not a zoo export" in message
    assert "choose another output path (--out)" in message
    assert _tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_overwrite_refuses_a_regular_file_and_a_fake_export(tiny_model, tmp_path):
    target = tmp_path / "out"
    target.write_bytes(b"not a folder")
    with pytest.raises(NotAnExportError, match=r"is a file, not a zoo export; remove it"):
        _export(tiny_model, target, overwrite=True)
    assert target.read_bytes() == b"not a folder"

    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "zoo_export.json").write_text("[1, 2]")
    (fake / "mine.txt").write_text("keep me")
    before = _tree(fake)
    with pytest.raises(NotAnExportError, match="has a zoo_export.json that is not zoo export metadata"):
        _export(tiny_model, fake, overwrite=True)
    assert _tree(fake) == before


def test_overwrite_replaces_an_empty_folder(tiny_model, tmp_path):
    # (Replacing a previous export is tested in test_export_saved_model.py.)
    empty = tmp_path / "empty"
    empty.mkdir()
    _export(tiny_model, empty, overwrite=True)
    assert (empty / "zoo_export.json").exists()
    assert sorted(os.listdir(tmp_path)) == ["empty"]


@pytest.mark.slow
def test_target_appearing_during_the_export_is_not_replaced(tiny_model, tmp_path, monkeypatch):
    from zoo.export import target as target_lib

    out = tmp_path / "out"
    original = target_lib.check_export_target

    def check_then_someone_writes(path, overwrite):
        written = [n for n in os.listdir(tmp_path) if (tmp_path / n / "zoo_export.json").exists()]
        if written and not out.exists():  # the re-check at the rename, after everything was written
            os.makedirs(out)
            (out / "late.txt").write_text("arrived meanwhile")
        return original(path, overwrite)

    monkeypatch.setattr(target_lib, "check_export_target", check_then_someone_writes)
    with pytest.raises(NotAnExportError, match=r"holds 1 item \(late.txt\)"):
        _export(tiny_model, out, overwrite=True)
    assert _tree(out) == {"late.txt": hashlib.sha256(b"arrived meanwhile").hexdigest()}
    assert sorted(os.listdir(tmp_path)) == ["out"]


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _sibling(parent, name, pid, host=None, kind="tmp", suffix=""):
    host = host or atomic._host_tag()
    path = parent / f".{name}.{kind}-{pid}-{host}-abc123xy{suffix}"
    return path


def test_stale_temporaries_of_killed_exports_are_removed_by_the_next_export(tiny_model, tmp_path):
    out = tmp_path / "sm"
    dead = _dead_pid()
    killed = _sibling(tmp_path, "sm", dead)
    (killed / "variables").mkdir(parents=True)
    (killed / "saved_model.pb").write_bytes(b"half")
    killed_backup = _sibling(tmp_path, "sm", dead, kind="old")
    killed_backup.mkdir()
    legacy = tmp_path / ".sm.tmp-k2j4h5g6"  # made before temporaries carried a PID
    legacy.mkdir()
    old = time.time() - atomic.LEGACY_STALE_SECONDS - 60
    os.utime(legacy, (old, old))
    kept = {
        "live": _sibling(tmp_path, "sm", os.getppid()),
        "own": _sibling(tmp_path, "sm", os.getpid()),
        "other-host": _sibling(tmp_path, "sm", dead, host="00000000"),
        "recent-legacy": tmp_path / ".sm.tmp-q7w8e9r0",
        "other-target": _sibling(tmp_path, "sm2", dead),
        "user-file": tmp_path / ".sm.tmp-notes",
    }
    for path in kept.values():
        path.mkdir()
    _export(tiny_model, out)
    left = sorted(os.listdir(tmp_path))
    assert left == sorted(["sm", *(p.name for p in kept.values())])


def test_remove_stale_temporaries_handles_files(tmp_path):
    target = tmp_path / "model.keras"
    stale = _sibling(tmp_path, "model.keras", _dead_pid(), suffix=".keras")
    stale.write_bytes(b"partial")
    assert atomic.remove_stale_temporaries(target) == [str(stale)]
    assert os.listdir(tmp_path) == []
    assert atomic.remove_stale_temporaries(tmp_path / "missing" / "x") == []


_KILLED_EXPORT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {helpers!r})
    from export_helpers import VOCABULARY, build_tiny
    import zoo
    from zoo.export import metadata

    def hang(directory, data):
        open({ready!r}, "w").close()
        time.sleep(600)

    metadata.write_metadata = hang  # the last write inside the temporary directory
    zoo.export_model(build_tiny(), {out!r}, vocabulary=VOCABULARY)
    """
)


@pytest.mark.slow
def test_sigkill_mid_export_then_export_again_leaves_no_temporary(tiny_model, tmp_path):
    out, ready = tmp_path / "exports" / "sm", tmp_path / "ready"
    script = _KILLED_EXPORT.format(helpers=os.path.dirname(__file__), ready=str(ready), out=str(out))
    process = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.time() + 120
        while not ready.exists():
            assert process.poll() is None and time.time() < deadline, "the export process did not reach the write"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    leftovers = [n for n in os.listdir(out.parent) if n.startswith(".sm.tmp-")]
    assert len(leftovers) == 1 and not out.exists()
    _export(tiny_model, out)
    assert sorted(os.listdir(out.parent)) == ["sm"]
