"""Dual encoders under zoo.train: the contrastive loss sees the global batch on every strategy."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "training", "run_contrastive.py")


def _run(out, strategy, loss, positives):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT,
               GCE_METADATA_IP="127.0.0.1:9")
    env.pop("TF_CONFIG", None)
    completed = subprocess.run([sys.executable, SCRIPT, str(out), strategy, loss, positives], env=env, capture_output=True,
                               text=True, timeout=480, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-4000:]
    with open(os.path.join(out, f"{strategy}.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.slow
@pytest.mark.parametrize("loss, positives", [("infonce", "class"), ("sigmoid", "caption")])
def test_two_mirrored_replicas_give_the_one_replica_loss(tmp_path, loss, positives):
    """Two replicas of 8 gather their embeddings: loss and update equal one replica of 16.

    Per replica, the loss would contrast each example with 7 others instead of
    15 and differ from the first step on.
    """
    default, mirrored = (_run(tmp_path, strategy, loss, positives) for strategy in ("default", "mirrored"))
    assert len(default["loss"]) == 3 and default["loss"][0] != default["loss"][-1]
    np.testing.assert_allclose(mirrored["loss"], default["loss"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(mirrored["weights"], default["weights"], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_train_uses_the_contrastive_step_with_and_without_jit(tmp_path, monkeypatch):
    """Keras' own train_step would pass the labels as targets; the contrastive step passes the captions."""
    from tensorflow.python.framework import config as tf_config

    import zoo
    from tests.training import synthetic
    from zoo.training import contrastive

    if tf_config.is_op_determinism_enabled():
        pytest.skip("op determinism is on in this process (an earlier seeded run), and jit refuses it")
    calls = []
    original = contrastive.make_train_step

    def spying(model):
        step = original(model)

        def traced(data):  # runs when the training function is traced
            calls.append(model.name)
            return step(data)

        return traced

    monkeypatch.setattr(contrastive, "make_train_step", spying)
    overrides = {"conv_filters": (4,), "image_units": 8, "vocab_size": 50, "max_length": 8, "embed_dim": 8,
                 "rnn_units": (8,), "projection_dim": 8}
    for jit in (False, True):
        result = zoo.train("cnn_lstm_dual_encoder", model_overrides=overrides, out=tmp_path / f"jit{jit}",
                           dataset_fn=synthetic.dataset_fn(32, 8), epochs=1, batch_size=8, jit=jit, verbose=0)
        assert np.isfinite(result.metrics["loss"])
        assert calls and set(calls) == {"cnn_lstm_dual_encoder"}, f"jit={jit}: the contrastive step did not run"
        calls.clear()
