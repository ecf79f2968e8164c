"""The training run's CPU thread pools: the measured fast default, the user's choice, and late calls."""

import logging
import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from zoo.training import threads
from zoo.training.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def small_cpu_host(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.setattr(threads, "cpu_cores", lambda: 2)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])


def test_recurrent_text_models_run_one_intra_op_thread_on_a_small_cpu_host(small_cpu_host):
    config = TrainConfig()
    assert threads.choose_intra_op_threads("cnn_lstm_concat_seed", config) == 1
    assert threads.choose_intra_op_threads("rnn_text", config) == 1
    # Measured slower or even with one thread: these keep TensorFlow's default.
    for name in ("resnet_image", "melcnn_audio", "cnn_image", "transformer_text"):
        assert threads.choose_intra_op_threads(name, config) is None, name
    assert threads.choose_intra_op_threads(lambda **_: None, config) is None


def test_the_users_choice_wins_and_unmeasured_hosts_keep_the_default(small_cpu_host, monkeypatch):
    assert threads.choose_intra_op_threads("resnet_image", TrainConfig(intra_op_threads=2)) == 2
    assert threads.choose_intra_op_threads("rnn_text", TrainConfig(intra_op_threads=0)) is None
    assert threads.choose_intra_op_threads("rnn_text", TrainConfig(strategy="tpu")) is None
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    assert threads.choose_intra_op_threads("rnn_text", TrainConfig()) is None
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS")
    monkeypatch.setattr(threads, "cpu_cores", lambda: threads.MEASURED_MAX_CORES + 1)
    assert threads.choose_intra_op_threads("rnn_text", TrainConfig()) is None
    monkeypatch.setattr(threads, "cpu_cores", lambda: 2)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["/GPU:0"] if kind == "GPU" else [])
    assert threads.choose_intra_op_threads("rnn_text", TrainConfig()) is None


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match=r"intra_op_threads=.*expected an integer"):
        TrainConfig(intra_op_threads=bad)


def test_after_tensorflow_started_the_default_is_kept_and_an_explicit_count_is_refused(
    small_cpu_host, tmp_path, caplog, monkeypatch
):
    from zoo.training import train

    tf.constant(1.0) + 1.0  # TensorFlow has started in this process
    current = tf.config.threading.get_intra_op_parallelism_threads()
    wanted = current + 3
    # An automatic choice other than the pool in use, whatever an earlier test left.
    monkeypatch.setattr(threads, "choose_intra_op_threads", lambda model, config: config.intra_op_threads or current + 2)
    with caplog.at_level(logging.INFO, logger=threads.__name__):
        threads.apply_thread_settings("rnn_text", TrainConfig())
    assert "stay at the default" in caplog.text
    assert tf.config.threading.get_intra_op_parallelism_threads() == current
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=rf"intra_op_threads={wanted} cannot take effect"):
        train("rnn_text", dataset_fn=lambda _: None, out=out, intra_op_threads=wanted, verbose=0)
    assert not out.exists(), "the refusal comes before the run folder is made"


@pytest.mark.slow
def test_zoo_train_as_the_first_tensorflow_work_sets_the_pool(tmp_path):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU keeps TensorFlow's default threads")
    script = textwrap.dedent(
        f"""
        import os
        os.environ.pop("TF_NUM_INTRAOP_THREADS", None)
        import tensorflow as tf
        from tests.training import synthetic
        from zoo.training import threads, train
        threads.cpu_cores = lambda: threads.MEASURED_MAX_CORES  # a small host, whatever runs the test
        train(synthetic.TINY_MODEL, dataset_fn=lambda _: synthetic.examples(16).batch(8), out={str(tmp_path / "run")!r},
              epochs=1, batch_size=8, verbose=0, model_overrides=synthetic.TINY_OVERRIDES, checkpoint_every=0)
        print("threads", tf.config.threading.get_intra_op_parallelism_threads())
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [row for row in done.stdout.splitlines() if row.startswith("threads ")][-1]
    assert line == "threads 1", done.stdout[-2000:]
