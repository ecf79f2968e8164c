"""Strategy resolution, options, checkpoint files and atomic writes, without training."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import tensorflow as tf

from zoo.training import checkpoints, strategy
from zoo.training.config import TrainConfig, make_learning_rate

# --- strategy ----------------------------------------------------------------


def test_resolve_strategy_caches_one_object_per_process():
    first = strategy.resolve_strategy("default")
    assert strategy.resolve_strategy("default") is first
    assert strategy.resolve_strategy("auto") is first
    assert strategy.strategy_kind(first) == "default"
    with pytest.raises(ValueError, match="already uses the 'default' strategy.*'mirrored'"):
        strategy.resolve_strategy("mirrored")


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="Unknown strategy 'mirorred'.*multi_worker"):
        strategy.resolve_strategy("mirorred")


def test_auto_picks_multi_worker_from_tf_config(monkeypatch):
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert strategy._auto_kind() == "multi_worker"
    single = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(single))
    assert strategy._auto_kind() == "default"
    monkeypatch.delenv("TF_CONFIG")
    assert strategy._auto_kind() == "default"


def test_bad_tf_config_is_reported(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        strategy._auto_kind()


def test_cluster_info_of_a_single_process():
    info = strategy.cluster_info(strategy.resolve_strategy("default"))
    assert (info.num_workers, info.worker_index, info.is_chief) == (1, 0, True)


def test_cli_strategy_choices_are_the_engines():
    import argparse

    from zoo.cli import train_cmd

    parser = argparse.ArgumentParser()
    train_cmd.add_parser(parser.add_subparsers())
    train = parser._subparsers._group_actions[0].choices["train"]
    choices = next(action.choices for action in train._actions if "--strategy" in action.option_strings)
    assert tuple(choices) == strategy.KINDS


# --- options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, r"epochs=0: expected an integer >= 1"),
        ({"batch_size": 2.5}, r"batch_size=2.5: expected an integer"),
        ({"strategy": "gpu"}, r"strategy='gpu': expected one of 'auto'"),
        ({"optimizer": "adagrad"}, r"optimizer='adagrad': expected one of 'adam'"),
        ({"learning_rate": -1.0}, r"learning_rate=-1.0: expected a number > 0"),
        ({"warmup_steps": 10}, r"warmup_steps=10 needs lr_schedule='cosine'"),
        ({"steps_per_execution": 0}, r"steps_per_execution=0: expected an integer >= 1"),
        ({"mixed_precision": "yes"}, r"mixed_precision='yes': expected True or False"),
        ({"verbose": 2}, r"verbose=2: expected one of 0, 1"),
        ({"seed": True}, r"seed=True: expected an integer or None"),
    ],
)
def test_bad_options_name_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def test_determinism_follows_the_seed_unless_set():
    assert TrainConfig(seed=3).op_determinism
    assert not TrainConfig().op_determinism
    assert not TrainConfig(seed=3, deterministic=False).op_determinism


def test_cosine_schedule_warms_up_then_decays():
    schedule = make_learning_rate(
        TrainConfig(learning_rate=0.1, lr_schedule="cosine", warmup_steps=10, min_lr_fraction=0.1), total_steps=110
    )
    rates = [float(schedule(step)) for step in (0, 5, 10, 60, 110)]
    assert rates[0] == pytest.approx(0.0)
    assert rates[1] == pytest.approx(0.05)
    assert rates[2] == pytest.approx(0.1)
    assert rates[2] > rates[3] > rates[4]
    assert rates[4] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="warmup_steps=10 must be smaller than the run's 10 steps"):
        make_learning_rate(TrainConfig(lr_schedule="cosine", warmup_steps=10), total_steps=10)


# --- checkpoints and atomic writes -------------------------------------------


def _save_three(directory):
    variable = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(v=variable)
    manager = checkpoints.make_manager(checkpoint, str(directory), keep=3)
    for step in (1, 2, 3):
        variable.assign(float(step))
        manager.save(checkpoint_number=step)
    return variable, checkpoint


def test_find_restorable_returns_the_newest(tmp_path):
    _save_three(tmp_path)
    path = checkpoints.find_restorable(str(tmp_path))
    assert checkpoints.checkpoint_step(path) == 3
    assert checkpoints.find_restorable(str(tmp_path / "missing")) is None


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path):
    variable, checkpoint = _save_three(tmp_path)
    data = tmp_path / "ckpt-3.data-00000-of-00001"
    damaged = bytearray(data.read_bytes())
    for i in range(0, len(damaged), 7):
        damaged[i] ^= 0xFF
    data.write_bytes(bytes(damaged))
    with pytest.warns(UserWarning, match=r"ckpt-3 cannot be restored .*falling back"):
        path = checkpoints.find_restorable(str(tmp_path))
    assert checkpoints.checkpoint_step(path) == 2
    checkpoint.restore(path)
    assert float(variable) == 2.0
    assert (tmp_path / "corrupt" / "ckpt-3.index").exists()
    # The state file now names the intact checkpoint, so the next look needs no fallback.
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoints.find_restorable(str(tmp_path)) == path


def test_missing_checkpoint_files_fall_back_too(tmp_path):
    _save_three(tmp_path)
    os.remove(tmp_path / "ckpt-3.index")
    with pytest.warns(UserWarning, match="ckpt-3 cannot be restored"):
        assert checkpoints.checkpoint_step(checkpoints.find_restorable(str(tmp_path))) == 2


def test_all_checkpoints_corrupt_means_a_fresh_start(tmp_path):
    _save_three(tmp_path)
    for index in tmp_path.glob("ckpt-*.index"):
        index.write_bytes(b"garbage")
    with pytest.warns(UserWarning):
        assert checkpoints.find_restorable(str(tmp_path)) is None
    assert not (tmp_path / "checkpoint").exists()


def test_checkpoint_step_rejects_other_names():
    with pytest.raises(ValueError, match="does not end in 'ckpt-<step>'"):
        checkpoints.checkpoint_step("/x/model-3")


def test_data_config_shards_are_counted_in_batches():
    import types

    from zoo.training.inputs import count_batches as _count_batches

    def make_dataset(data, split, mode, shuffle, input_context, batch_size, **options):
        # Unknown cardinality, as a filtered shard has: 10 examples -> batches of 4, 4, 2.
        examples = tf.data.Dataset.range(20).filter(lambda i: i % 2 == input_context.input_pipeline_id)
        return examples.batch(input_context.get_per_replica_batch_size(batch_size))

    pipeline = types.SimpleNamespace(make_dataset=make_dataset, num_examples=lambda *a, **k: 99)
    def options(context):
        return {"batch_size": 8, "data_dir": None, "source_dir": None, "input_context": context}

    two_workers = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    assert _count_batches(pipeline, "vqa", "train", two_workers, options(two_workers)) == 3
    one_pipeline = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
    assert _count_batches(pipeline, "vqa", "train", one_pipeline, options(one_pipeline)) == 25
