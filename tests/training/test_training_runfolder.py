"""Run folders that never contradict themselves (issue 13): one writer, safe write order, no leftovers."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import zoo
import zoo.core.atomic
from tests.training import synthetic
from zoo.training import RunLocked, runlock
from zoo.training.runfiles import RunIncomplete, verify_run

EXAMPLES, BATCH = 32, 8
STEPS = EXAMPLES // BATCH
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(os.path.dirname(__file__), "run_synthetic.py")


def _train(out, **options):
    options.setdefault("seed", 1)
    options.setdefault("vocabulary", ["", "[UNK]", "seven", "eight"])
    options.setdefault("batch_size", BATCH)
    return synthetic.train_tiny(out, examples_count=EXAMPLES, **options)


def _snapshot(folder):
    """Every file under `folder`: relative path -> (bytes, mtime_ns)."""
    files = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, folder)] = (handle.read(), os.stat(path).st_mtime_ns)
    return files


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch run (seed 1, checkpoints every 2 steps), copied by the tests that change it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    _train(out, epochs=1, checkpoint_every=2)
    return out


def _copy(finished, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(finished, target)
    return target


# --- refusals before anything is written -------------------------------------


def test_a_foreign_folder_is_refused_and_left_byte_identical(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"user data")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match=rf"--out {tmp_path} is not empty and is not a run of the zoo \(it holds notes, saved_model.pb\)"):
        _train(tmp_path)
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["notes", "saved_model.pb"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model_overrides": {"rnn_unitz": 3}}, "Unknown hyperparameter 'rnn_unitz'"),
        ({"epochs": 0}, "epochs=0"),
        ({"data": "nope", "dataset_fn": None}, "Unknown data config 'nope'"),
        ({"data": "vqa", "dataset_fn": None, "train_split": "trian"}, "Unknown split 'trian'"),
        ({"data": "vqa", "dataset_fn": None, "validation_split": "validation[:abc]"}, r"Unknown split 'validation\[:abc\]'"),
    ],
)
def test_bad_settings_leave_no_folder(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        _train(tmp_path / "new", **options)
    assert not (tmp_path / "new").exists()


# --- one writer per run folder -------------------------------------------------


def test_a_held_folder_is_refused_at_once_naming_the_holder(tmp_path):
    os.makedirs(tmp_path / "run")
    with runlock.exclusive_lock(tmp_path / "run") as fd:
        runlock.write_holder(fd)
        start = time.monotonic()
        with pytest.raises(RunLocked, match=rf"run is in use by another process \(pid {os.getpid()} on host "):
            _train(tmp_path / "run")
        assert time.monotonic() - start < 2
        with pytest.raises(RunLocked), runlock.shared_lock(tmp_path / "run"):
            pass
    assert len(str(RunLocked(str(tmp_path), "pid 1 on host h", "read")).splitlines()) == 1
    # Readers share; a writer is refused while one reads.
    with runlock.shared_lock(tmp_path / "run"), runlock.shared_lock(tmp_path / "run"):
        with pytest.raises(RunLocked), runlock.exclusive_lock(tmp_path / "run"):
            pass


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT)
    env["GCE_METADATA_IP"] = "127.0.0.1:9"
    env.pop("TF_CONFIG", None)
    return env


@pytest.mark.slow
def test_two_concurrent_trainings_on_one_folder(tmp_path):
    run_dir = tmp_path / "shared"
    first_side, second_side = tmp_path / "first", tmp_path / "second"
    first_side.mkdir()
    release = tmp_path / "release"
    common = [sys.executable, SCRIPT, "--run-dir", str(run_dir), "--examples", "32", "--batch-size", "8"]
    # The first run holds the folder after its first step until the second has been refused.
    first = subprocess.Popen([*common[:2], str(first_side), *common[2:], "--seed", "1", "--hold-until", str(release)],
                             env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = first_side / "ids-0.log"
        deadline = time.monotonic() + 240
        while not (log.exists() and log.read_text().strip()):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        second = subprocess.run([*common[:2], str(second_side), *common[2:], "--seed", "2"],
                                env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert second.returncode == 3, second.stderr[-3000:]
        assert f"pid {first.pid} on host" in second.stdout
        release.touch()
        assert first.wait(timeout=240) == 0, first.communicate()
    finally:
        release.touch()
        if first.poll() is None:
            first.kill()
    marker = verify_run(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["seed"], marker["step"]) == (1, 2 * STEPS)
    newest = sorted((run_dir / "checkpoints").glob("ckpt-*.index"), key=lambda p: int(p.name[5:-6]))[-1]
    assert newest.name == f"ckpt-{2 * STEPS}.index"
    weights = np.concatenate([np.asarray(w).ravel() for w in keras.saving.load_model(run_dir / "model.keras").get_weights()])
    np.testing.assert_array_equal(weights, np.load(first_side / "weights-0.npy"))


# --- write order and disk-full -------------------------------------------------


def _fail_writing(monkeypatch, name, armed):
    """Makes the atomic write of `name` fail with ENOSPC once its temporary file is written, when `armed`."""
    real = zoo.core.atomic._fsync_file

    def fsync(path):
        if armed and os.path.basename(path).startswith(f".{name}.tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(path)

    monkeypatch.setattr(zoo.core.atomic, "_fsync_file", fsync)


def _consistent(out, steps_done):
    """The folder is complete at `steps_done`, or unfinished (no marker) and resumable."""
    if (out / "metrics.json").exists():
        assert verify_run(out)["step"] == steps_done
    else:
        with pytest.raises(RunIncomplete, match="is not a finished run"):
            verify_run(out)
    assert not [p for p in os.listdir(out) if ".tmp-" in p]


@pytest.mark.parametrize(
    "name",
    ["model.keras", *(pytest.param(n, marks=pytest.mark.slow) for n in ("vocabulary.txt", "config.json", "metrics.json"))],
)
def test_disk_full_at_each_final_write(tmp_path, monkeypatch, finished, name):
    out = _copy(finished, tmp_path)
    armed = []
    _fail_writing(monkeypatch, name, armed)
    # Armed after the last step, so the failure hits the final save (vocabulary and
    # config are also written when training starts).
    with pytest.raises(OSError) as raised:
        _train(out, epochs=2, checkpoint_every=2, on_batch_ids=lambda step, ids: step == 2 * STEPS and armed.append(1))
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(out / name)
    _consistent(out, 2 * STEPS)
    monkeypatch.undo()
    result = _train(out, epochs=2, checkpoint_every=2)
    assert not result.already_complete and result.resumed_from_step == 2 * STEPS
    assert result.notice == f"resuming from step {2 * STEPS} of {2 * STEPS}"
    assert verify_run(out)["step"] == 2 * STEPS


def test_verify_run_catches_an_edited_artifact(tmp_path, finished):
    out = _copy(finished, tmp_path)
    assert verify_run(out)["step"] == STEPS
    config = json.loads((out / "config.json").read_text())
    assert config["vocabulary_size"] == 4 and len(config["vocabulary_sha256"]) == 64
    (out / "vocabulary.txt").write_text("\n[UNK]\nseven\n", encoding="utf-8")
    with pytest.raises(RunIncomplete, match=r"vocabulary.txt is not the file metrics.json describes"):
        verify_run(out)


@pytest.mark.slow
def test_disk_full_on_a_real_small_tmpfs(tmp_path, finished):
    mount = tmp_path / "small"
    mount.mkdir()
    used = sum(len(content) for content, _ in _snapshot(finished).values())
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used + 64 * 1024}", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mount / "run"
        shutil.copytree(finished, out)
        with pytest.raises(OSError) as raised:
            _train(out, epochs=3, checkpoint_every=1)
        assert raised.value.errno == errno.ENOSPC and str(raised.value.filename).startswith(str(out))
        _consistent(out, 3 * STEPS)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# --- finished, resumed, refused re-runs ----------------------------------------


def test_a_finished_run_asked_again_changes_nothing(tmp_path, finished, caplog):
    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    with caplog.at_level(logging.INFO, logger="zoo.training"):
        result = _train(out, epochs=1, checkpoint_every=2)
    assert result.already_complete and result.history == [] and result.step == STEPS
    assert result.notice == f"already complete ({STEPS} steps); nothing to do"
    assert result.notice in caplog.text
    assert _snapshot(out) == before


@pytest.mark.slow
def test_a_resumed_run_says_from_which_step(tmp_path, finished, caplog):
    out = _copy(finished, tmp_path)
    with caplog.at_level(logging.INFO, logger="zoo.training"):
        result = _train(out, epochs=2, checkpoint_every=2)
    assert result.resumed_from_step == STEPS and not result.already_complete
    assert result.notice == f"resuming from step {STEPS} of {2 * STEPS}" and result.notice in caplog.text


def test_a_refused_resume_names_only_what_differs(tmp_path, finished):
    out = _copy(finished, tmp_path)
    with pytest.raises(ValueError) as refused:
        _train(out, epochs=2, model_overrides={**synthetic.TINY_OVERRIDES, "head_units": 12})
    message = str(refused.value)
    assert "(head_units: 16 -> 12)" in message and "embed_dim" not in message and len(message.splitlines()) == 1


# --- leftovers -------------------------------------------------------------------


@pytest.mark.slow
def test_no_leftovers_after_a_killed_save_and_a_fallback(tmp_path, finished):
    out = _copy(finished, tmp_path)
    checkpoints = out / "checkpoints"
    # A save killed midway, and a complete checkpoint the state file never heard of.
    (checkpoints / "ckpt-5_temp").mkdir()
    (checkpoints / "ckpt-5_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 1000)
    for path in checkpoints.glob("ckpt-2.*"):
        shutil.copy(path, checkpoints / path.name.replace("ckpt-2", "ckpt-1"))
    # The newest checkpoint is damaged: the run falls back to ckpt-2 and redoes steps 3 and 4.
    data = checkpoints / f"ckpt-{STEPS}.data-00000-of-00001"
    data.write_bytes(b"\0" * data.stat().st_size)
    with pytest.warns(UserWarning, match=f"ckpt-{STEPS} cannot be restored"):
        result = _train(out, epochs=2, checkpoint_every=2, keep_checkpoints=2)
    assert result.resumed_from_step == 2
    assert not list(checkpoints.glob("*_temp*"))
    assert sorted(p.name for p in checkpoints.glob("ckpt-*.index")) == ["ckpt-6.index", "ckpt-8.index"]
    assert verify_run(out)["step"] == 2 * STEPS
