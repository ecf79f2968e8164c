"""Ctrl-C on `zoo train` as a user presses it: at start-up and after a checkpoint; then resume and finish."""

from __future__ import annotations

import glob
import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.training.test_training_cli import TINY_SET, _mnist_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _command(tmp_path):
    return [
        sys.executable, "-m", "zoo.cli.main", "train", "cnn_lstm_concat", "--data", "vqa",
        "--data-dir", str(tmp_path / "tfds"), "--train-split", "train[:2048]", "--validation-split", "validation[:64]",
        "--batch-size", "16", "--max-length", "16", "--seed", "4", "--epochs", "2", "--checkpoint-every", "4",
        "--out", str(tmp_path / "run"), *TINY_SET,
    ]


def _environment():
    # The user's terminal: no log level chosen, so the zoo's own quieting is what is tested.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return dict(env, PYTHONPATH=ROOT)


def _interrupt(command, when) -> subprocess.CompletedProcess:
    process = subprocess.Popen(command, env=_environment(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 600
    while not when() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _tree(root):
    files = {}
    for path in sorted(glob.glob(os.path.join(root, "**"), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                files[os.path.relpath(path, root)] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return files


@pytest.mark.slow
@pytest.mark.skipif(_mnist_dir() is None, reason="needs the MNIST files in ZOO_DATA_DIR")
def test_ctrl_c_exits_130_with_one_line_then_the_run_resumes_and_finishes(tmp_path):
    command = _command(tmp_path)
    started = time.monotonic()
    early = _interrupt(command, lambda: time.monotonic() - started > 1.0)
    assert early.returncode == 130, early.stderr[-3000:]
    assert "Traceback" not in early.stderr
    assert [line for line in early.stderr.splitlines() if "interrupt" in line.lower()] == early.stderr.strip().splitlines()[-1:]

    checkpoints = str(tmp_path / "run" / "checkpoints" / "ckpt-*.index")
    late = _interrupt(command, lambda: bool(glob.glob(checkpoints)))
    assert late.returncode == 130, late.stderr[-3000:]
    assert "Traceback" not in late.stderr
    last = late.stderr.strip().splitlines()[-1]
    assert "interrupt" in last.lower() and "checkpoint" in last.lower(), late.stderr[-2000:]

    resumed = subprocess.run(command, env=_environment(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step" in resumed.stdout + resumed.stderr

    before = _tree(tmp_path / "run")
    again = subprocess.run(command, env=_environment(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already complete" in again.stdout + again.stderr
    assert _tree(tmp_path / "run") == before, "a finished run's re-run changed files"
