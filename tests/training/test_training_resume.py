"""Kills, restarts, strategies and seeds, each in fresh processes (one strategy per process).

Every run goes through tests/training/run_synthetic.py: the tiny model on
synthetic examples tagged with ids, so the tests can check which examples each
step consumed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "run_synthetic.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES, BATCH, EPOCHS = 64, 8, 2
STEPS_PER_EPOCH = EXAMPLES // BATCH

pytestmark = pytest.mark.slow


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT)
    # Keeps TensorFlow's cloud-platform probe on loopback (refused at once).
    env["GCE_METADATA_IP"] = "127.0.0.1:9"
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(out, *args, timeout=480, expect=0, env=None):
    completed = subprocess.run(
        [sys.executable, SCRIPT, str(out), *map(str, args)],
        env=env or _env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )
    if completed.returncode != expect:
        raise AssertionError(
            f"run_synthetic exited {completed.returncode}, expected {expect}:\n{completed.stdout}\n{completed.stderr[-4000:]}"
        )
    return completed


def _steps(out, worker=0) -> dict[int, list[int]]:
    """Step -> example ids, the last record of a step winning (a restart redoes unsaved steps)."""
    steps = {}
    with open(os.path.join(out, f"ids-{worker}.log"), encoding="utf-8") as handle:
        for line in handle:
            step, *ids = line.split()
            steps[int(step)] = [int(i) for i in ids]
    return steps


def _weights(out, worker=0):
    return np.load(os.path.join(out, f"weights-{worker}.npy"))


def _history(out, worker=0):
    with open(os.path.join(out, f"history-{worker}.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted seeded run: 2 epochs of 8 steps."""
    out = tmp_path_factory.mktemp("reference")
    _run(out)
    return out


def test_sigkill_mid_epoch_then_restart_is_exact(tmp_path, reference):
    killed = tmp_path / "killed"
    # Checkpoints land at steps 3, 6, 8 (epoch end) and 9; the kill after
    # step 11 (in epoch 2) loses steps 10 and 11.
    _run(killed, "--kill-at-step", 11, expect=-signal.SIGKILL)
    assert len((killed / "ids-0.log").read_text().splitlines()) == 11
    assert sorted(p.name for p in (killed / "run" / "checkpoints").glob("ckpt-*.index")) == ["ckpt-8.index", "ckpt-9.index"]
    _run(killed)

    assert _history(killed)["step"] == EPOCHS * STEPS_PER_EPOCH
    assert _history(killed)["epoch"] == EPOCHS
    # The restart redid steps 10 and 11 only: 16 steps + 2 replayed lines.
    assert len((killed / "ids-0.log").read_text().splitlines()) == 16 + 2
    steps = _steps(killed)
    assert sorted(steps) == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    assert steps == _steps(reference)
    for epoch in range(EPOCHS):
        seen = [i for s in range(epoch * STEPS_PER_EPOCH + 1, (epoch + 1) * STEPS_PER_EPOCH + 1) for i in steps[s]]
        assert sorted(seen) == list(range(EXAMPLES)), f"epoch {epoch + 1} did not see every example exactly once"
    # The two epochs' orders differ: the restored iterator kept the shuffle state.
    assert steps[1] != steps[STEPS_PER_EPOCH + 1]
    np.testing.assert_array_equal(_weights(killed), _weights(reference))


def test_two_seeded_runs_give_identical_weights(tmp_path, reference):
    _run(tmp_path)
    assert _weights(tmp_path).tobytes() == _weights(reference).tobytes()
    # Training moved the weights (the loss changed), so equal weights are not trivially equal.
    losses = [epoch["loss"] for epoch in _history(tmp_path)["history"]]
    assert losses[0] != losses[1]


def test_mirrored_on_two_cpus_matches_default_strategy(tmp_path):
    common = ["--no-shuffle", "--dropout", 0.0, "--epochs", 4, "--steps-per-epoch", 1, "--checkpoint-every", 0]
    # Same global batch of 16: one replica of 16, or two replicas of 8.
    _run(tmp_path / "default", *common, "--batch-size", 16)
    _run(tmp_path / "mirrored", *common, "--batch-size", 8, "--strategy", "mirrored", "--logical-cpus", 2)
    default = [epoch["loss"] for epoch in _history(tmp_path / "default")["history"]]
    mirrored = [epoch["loss"] for epoch in _history(tmp_path / "mirrored")["history"]]
    assert len(default) == 4
    np.testing.assert_allclose(mirrored, default, rtol=0, atol=1e-5)
    np.testing.assert_allclose(_weights(tmp_path / "mirrored"), _weights(tmp_path / "default"), rtol=0, atol=1e-5)
    # Both replicas' batches went into each step: 16 ids per step.
    assert all(len(ids) == 16 for ids in _steps(tmp_path / "mirrored").values())


# --- multi-worker ------------------------------------------------------------


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_workers(out, *args):
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        log = open(os.path.join(out, f"worker-{index}.out"), "a", encoding="utf-8")
        processes.append(subprocess.Popen(
            [sys.executable, SCRIPT, str(out), "--strategy", "multi_worker", "--batch-size", "4", *map(str, args)],
            env=_env(TF_CONFIG=json.dumps(tf_config)), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        ))
    return processes


def _wait_all(processes, out, timeout=480):
    codes = []
    try:
        for process in processes:
            codes.append(process.wait(timeout=timeout))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    if len(codes) != len(processes):
        raise AssertionError(f"workers did not finish; logs in {out}")
    return codes


def _logs(out):
    return "\n".join((out / f"worker-{i}.out").read_text()[-3000:] for i in range(2))


@pytest.fixture(scope="module")
def multi_worker_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("multi_worker_reference")
    codes = _wait_all(_start_workers(out), out)
    assert codes == [0, 0], _logs(out)
    return out


def test_two_workers_train_to_identical_weights(multi_worker_reference):
    out = multi_worker_reference
    np.testing.assert_array_equal(_weights(out, 0), _weights(out, 1))
    # 64 examples, 2 workers x batch 4 = 8 steps per epoch.
    assert _history(out, 0)["step"] == _history(out, 1)["step"] == EPOCHS * STEPS_PER_EPOCH
    # The workers read disjoint shards that together cover every example in each epoch.
    steps = [_steps(out, w) for w in range(2)]
    for epoch in range(EPOCHS):
        seen = [i for w in range(2) for s in range(epoch * 8 + 1, epoch * 8 + 9) for i in steps[w][s]]
        assert sorted(seen) == list(range(EXAMPLES))
    # Only the chief writes the run's files.
    assert (out / "run" / "model.keras").is_file() and (out / "run" / "metrics.json").is_file()
    assert (out / "run" / "checkpoints" / "worker_1").is_dir()


def test_sigterm_to_one_worker_saves_both_and_restart_finishes_exactly(tmp_path, multi_worker_reference):
    out = tmp_path
    processes = _start_workers(out, "--sleep", 0.3)
    log = out / "ids-1.log"
    deadline = time.monotonic() + 400
    while not (log.exists() and len(log.read_text().splitlines()) >= 5):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            _wait_all(processes, out, timeout=5)
            raise AssertionError("workers did not reach step 5:\n" + _logs(out))
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGTERM)
    codes = _wait_all(processes, out)
    assert codes == [42, 42], _logs(out)
    saved = [int(line.split()[-1]) for line in _logs(out).splitlines() if line.startswith("preempted at step")]
    assert len(saved) == 2 and saved[0] == saved[1] < EPOCHS * STEPS_PER_EPOCH

    codes = _wait_all(_start_workers(out), out)
    assert codes == [0, 0], _logs(out)
    for worker in range(2):
        assert _history(out, worker)["step"] == EPOCHS * STEPS_PER_EPOCH
        assert _steps(out, worker) == _steps(multi_worker_reference, worker)
    np.testing.assert_array_equal(_weights(out, 0), _weights(out, 1))
    np.testing.assert_array_equal(_weights(out, 0), _weights(multi_worker_reference, 0))
