"""`zoo.train` in this process (default strategy) on tiny synthetic data."""

from __future__ import annotations

import glob
import json
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.training import synthetic
from zoo.training import Preempted

EXAMPLES, BATCH = 32, 8
STEPS = EXAMPLES // BATCH


def _train(out, **options):
    options.setdefault("strategy", "default")
    options.setdefault("batch_size", BATCH)
    return synthetic.train_tiny(out, examples_count=EXAMPLES, **options)


def _scalars(event_dir):
    values = {}
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor)))
                )
    return values


def test_train_writes_the_run_directory(tmp_path):
    seen = []
    result = _train(
        tmp_path,
        validation_fn=synthetic.dataset_fn(16, BATCH, shuffle_seed=None),
        epochs=2,
        vocabulary=["", "[UNK]", "seven"],
        on_batch_ids=lambda step, ids: seen.append((step, sorted(ids.tolist()))),
        extra_config={"note": "unit test"},
    )
    assert (result.step, result.epoch, result.stopped_early) == (2 * STEPS, 2, False)
    assert [step for step, _ in seen] == list(range(1, 2 * STEPS + 1))
    first_epoch = sorted(i for _, ids in seen[:STEPS] for i in ids)
    assert first_epoch == list(range(EXAMPLES))
    assert set(result.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert len(result.history) == 2
    # Each epoch's first call (tracing, epoch-end work) is left out of the timing.
    assert len(result.step_times) == 2 * (STEPS - 1) and min(result.step_times) > 0
    assert result.examples_per_second > 0

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == synthetic.TINY_MODEL
    assert config["hyperparameters"]["rnn_units"] == [8, 8]
    assert (config["epochs"], config["batch_size"], config["global_batch_size"], config["steps_per_epoch"]) == (2, 8, 8, 4)
    assert config["strategy_resolved"] == "default" and config["note"] == "unit test"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["step"] == 8 and metrics["val_loss"] == pytest.approx(result.metrics["val_loss"])
    assert (tmp_path / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:3] == ["", "[UNK]", "seven"]

    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    features, _ = next(iter(synthetic.examples(4).batch(4)))
    inputs = {k: features[k] for k in ("image", "token_ids")}
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), result.model.predict(inputs, verbose=0), atol=1e-6)

    train_scalars = _scalars(tmp_path / "logs" / "train")
    assert [step for step, _ in train_scalars["epoch_loss"]] == [1, 2]
    assert train_scalars["epoch_loss"][-1][1] == pytest.approx(result.metrics["loss"])
    assert [step for step, _ in _scalars(tmp_path / "logs" / "validation")["epoch_accuracy"]] == [1, 2]
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".") and p != ".lock"]
    assert leftovers == []


@pytest.mark.slow
def test_a_second_call_resumes_and_extends_the_run(tmp_path):
    first = _train(tmp_path, epochs=1, checkpoint_every=0)
    assert first.step == STEPS
    steps = []
    second = _train(tmp_path, epochs=2, checkpoint_every=0, on_batch_ids=lambda step, ids: steps.append(step))
    assert steps == list(range(STEPS + 1, 2 * STEPS + 1))
    assert (second.step, second.epoch, len(second.history)) == (2 * STEPS, 2, 1)
    # A finished run given the same command does nothing and reports the saved metrics.
    third = _train(tmp_path, epochs=2, on_batch_ids=lambda step, ids: steps.append(step))
    assert third.step == 2 * STEPS and len(steps) == STEPS and third.history == []
    assert third.metrics["loss"] == pytest.approx(second.metrics["loss"])


def _changed_pipeline(input_context):
    # The same examples with one more step in the pipeline: what a new version's data preparation looks like.
    return synthetic.dataset_fn(EXAMPLES, BATCH)(input_context).prefetch(1)


def test_a_changed_input_pipeline_still_reads_a_finished_run_and_refuses_to_resume_one(tmp_path):
    first = _train(tmp_path, epochs=1, checkpoint_every=0)
    # A finished run is read back without its data position.
    again = _train(tmp_path, epochs=1, dataset_fn=_changed_pipeline)
    assert again.already_complete and again.metrics["loss"] == pytest.approx(first.metrics["loss"])
    # Resuming needs the position, which the changed pipeline cannot take: a clear error.
    with pytest.raises(ValueError, match="input pipeline that differs .* new --out directory"):
        _train(tmp_path, epochs=2, dataset_fn=_changed_pipeline)


@pytest.mark.slow
def test_a_corrupt_newest_checkpoint_resumes_from_the_previous_one(tmp_path):
    _train(tmp_path, epochs=1, checkpoint_every=2)
    data = tmp_path / "checkpoints" / "ckpt-4.data-00000-of-00001"
    data.write_bytes(b"\0" * data.stat().st_size)
    # Ask for one more epoch: the run must redo steps 3 and 4 from ckpt-2, then train epoch 2.
    steps = []
    with pytest.warns(UserWarning, match="ckpt-4 cannot be restored"):
        result = _train(tmp_path, epochs=2, checkpoint_every=2, on_batch_ids=lambda step, ids: steps.append(step))
    assert steps == [3, 4, 5, 6, 7, 8]
    assert (result.step, result.epoch) == (8, 2)


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused(tmp_path):
    _train(tmp_path, epochs=1, seed=None)
    with pytest.raises(ValueError, match=r"holds checkpoints of a run with other settings \(batch_size: 8 -> 4"):
        _train(tmp_path, epochs=2, batch_size=4, dataset_fn=synthetic.dataset_fn(EXAMPLES, 4))


def test_sigterm_saves_and_raises_preempted(tmp_path):
    def on_batch_ids(step, ids):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted, match="at step 2") as stopped:
        _train(tmp_path, epochs=2, checkpoint_every=0, on_batch_ids=on_batch_ids)
    assert stopped.value.checkpoint.endswith("ckpt-2")
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
    assert not (tmp_path / "model.keras").exists()
    # The process's own SIGTERM handling is back once training returns.
    assert signal.getsignal(signal.SIGTERM) == previous


@pytest.mark.slow
def test_early_stopping_ends_the_run(tmp_path):
    # No epoch can improve the loss by 10, so the second epoch ends the run.
    result = _train(tmp_path, epochs=6, early_stopping_patience=1, monitor="loss", min_delta=10.0)
    assert (result.epoch, result.stopped_early) == (2, True)
    assert json.loads((tmp_path / "metrics.json").read_text())["stopped_early"] is True


@pytest.mark.slow
def test_cosine_schedule_jit_and_steps_per_execution(tmp_path):
    calls = []
    result = _train(
        tmp_path, epochs=2, lr_schedule="cosine", warmup_steps=2, learning_rate=0.01, jit=True,
        steps_per_execution=3, checkpoint_every=0, on_batch_ids=lambda step, ids: calls.append((step, len(ids))),
    )
    # Epochs of 4 steps in calls of at most 3 steps: 3 + 1 per epoch.
    assert calls == [(3, 24), (4, 8), (7, 24), (8, 8)]
    assert result.history[0]["learning_rate"] > result.history[1]["learning_rate"] >= 0.0
    assert np.isfinite(result.metrics["loss"])


@pytest.mark.slow
def test_mixed_precision_trains_in_low_precision(tmp_path):
    result = _train(tmp_path, epochs=1, mixed_precision=True)
    assert any(layer.dtype_policy.compute_dtype in ("bfloat16", "float16") for layer in result.model.layers)
    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(result.metrics["loss"])


def test_bad_data_is_reported_before_training(tmp_path):
    with pytest.raises(ValueError, match="exactly one of data=CONFIG or dataset_fn"):
        zoo.train(synthetic.TINY_MODEL, out=tmp_path)
    plain = tf.data.Dataset.from_tensor_slices((np.zeros((4, 28, 28, 1), "float32"), np.zeros(4, "int32"))).batch(2)
    with pytest.raises(ValueError, match=r"must yield \(features, label\)"):
        _train(tmp_path, dataset_fn=plain)
    unknown_length = synthetic.examples(16).filter(lambda f, y: True).batch(4)
    with pytest.raises(ValueError, match="length is unknown or infinite.*pass steps_per_epoch"):
        _train(tmp_path, dataset_fn=unknown_length)
    no_ids = synthetic.examples(16).map(lambda f, y: ({"image": f["image"], "token_ids": f["token_ids"]}, y)).batch(4)
    with pytest.raises(ValueError, match="on_batch_ids needs an 'example_id' feature"):
        _train(tmp_path, dataset_fn=no_ids, on_batch_ids=print)
    with pytest.raises(ValueError, match="Early stopping monitors 'val_loss' but no validation data"):
        _train(tmp_path, early_stopping_patience=2)
    with pytest.raises(ValueError, match="Unknown hyperparameter 'rnn_unitz'"):
        _train(tmp_path, model_overrides={"rnn_unitz": 3})
    image_only = synthetic.examples(16).map(lambda f, y: ({"image": f["image"]}, y)).batch(4)
    with pytest.raises(ValueError, match=r"lack the model input\(s\) \['token_ids'\]"):
        _train(tmp_path, dataset_fn=image_only)
    assert not (tmp_path / "checkpoints").exists()


def test_jit_with_op_determinism_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="jit=True cannot run with op determinism .*seed=3 was given"):
        _train(tmp_path / "seeded", jit=True, seed=3)
    with pytest.raises(ValueError, match="deterministic=True"):
        _train(tmp_path / "deterministic", jit=True, deterministic=True)


def test_jit_after_a_deterministic_run_in_the_same_process_is_refused(tmp_path):
    tf.config.experimental.enable_op_determinism()
    with pytest.raises(ValueError, match="op determinism was turned on earlier in this process"):
        _train(tmp_path, jit=True, epochs=1)
    assert not os.path.exists(tmp_path / "model.keras")


def test_ctrl_c_saves_between_steps_and_reraises(tmp_path):
    def on_batch_ids(step, ids):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, epochs=2, checkpoint_every=0, on_batch_ids=on_batch_ids)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")
    assert not (tmp_path / "metrics.json").exists()
    assert signal.getsignal(signal.SIGINT) == previous
