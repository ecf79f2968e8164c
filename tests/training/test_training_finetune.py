"""Fine-tuning in zoo.train: frozen towers, unfreezing at an epoch, the backbone learning rate, resume."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.training.finetune import FineTune

TEXT = {"vocabulary_size": 40, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32,
        "max_sequence_length": 16}
MODEL = "bert_resnet_concat_tiny"
OVERRIDES = {"text_config": TEXT, "max_length": 8, "head_units": 8}
TOWERS = ("text_backbone", "image_backbone")
EXAMPLES, BATCH = 32, 8


def _dataset(_context=None):
    ids = tf.data.Dataset.range(EXAMPLES)

    def make(i):
        label = tf.cast(i % 10, tf.int32)
        image = tf.random.stateless_uniform([28, 28, 1], seed=tf.stack([i, tf.constant(3, tf.int64)]))
        tokens = tf.random.stateless_uniform([8], seed=tf.stack([i, tf.constant(5, tf.int64)]), minval=2, maxval=40,
                                             dtype=tf.int32)
        tokens = tf.concat([tokens[:5], tf.zeros([3], tf.int32)], 0)
        features = {"image": image, "token_ids": tokens, "padding_mask": tf.cast(tokens != 0, tf.int32),
                    "segment_ids": tf.zeros([8], tf.int32), "example_id": i}
        return features, label

    return ids.map(make).batch(BATCH)


def _train(out, **options):
    settings = dict(epochs=1, batch_size=BATCH, seed=1, verbose=0, checkpoint_every=3, learning_rate=1e-2)
    settings.update(options)
    return zoo.train(MODEL, out=out, dataset_fn=_dataset, validation_fn=None, model_overrides=OVERRIDES, **settings)


def _values(layer):
    return {v.path: np.array(v) for v in layer.weights}


def test_frozen_towers_keep_every_weight_and_batch_norm_statistic(tmp_path):
    keras.utils.set_random_seed(1)
    before = zoo.build(MODEL, **OVERRIDES)
    result = _train(tmp_path, freeze=TOWERS)
    model = result.model
    assert [v for v in model.get_layer("image_backbone").non_trainable_weights if "moving" in v.path]
    for tower in TOWERS:
        layer = model.get_layer(tower)
        for path, value in _values(layer).items():
            np.testing.assert_array_equal(value, _values(before.get_layer(tower))[path], err_msg=path)
    changed = [not np.array_equal(a, b) for a, b in zip(model.get_layer("head_hidden").get_weights(),
                                                         before.get_layer("head_hidden").get_weights(), strict=True)]
    assert all(changed)
    # Only the new layers had optimizer slots: frozen-for-good towers cost no memory.
    assert len(model.optimizer.variables) == 2 + 2 * len(model.trainable_weights)


@pytest.mark.slow
def test_unfreezing_trains_the_towers_from_that_epoch(tmp_path):
    keras.utils.set_random_seed(1)
    before = zoo.build(MODEL, **OVERRIDES)
    result = _train(tmp_path, freeze=("image",), unfreeze_epoch=1, epochs=2)
    image = result.model.get_layer("image_backbone")
    assert image.trainable
    original = _values(before.get_layer("image_backbone"))
    moved = {path: not np.array_equal(value, original[path]) for path, value in _values(image).items()}
    assert all(moved[v.path] for v in image.trainable_weights if "gamma" not in v.path and "beta" not in v.path)
    # Training mode again after unfreezing: the statistics follow the batches.
    assert all(moved[v.path] for v in image.non_trainable_weights if "moving" in v.path)


def test_backbone_learning_rate_multiplier_scales_its_updates():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    backbone = keras.Sequential([keras.layers.Dense(3)], name="image_backbone")
    outputs = keras.layers.Dense(2, name="head_logits")(backbone(inputs))
    model = keras.Model(inputs, outputs)
    tune = FineTune(model, ["image_backbone"], unfreeze_epoch=1, multiplier=0.1)
    tune.before_optimizer_build()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_variables)
    tune.install(model.optimizer)
    assert tune.set_epoch(0) and not backbone.trainable
    assert tune.set_epoch(1) and backbone.trainable and not tune.set_epoch(2)
    model.compile(optimizer=model.optimizer, loss="mse")  # a fresh train function sees the unfrozen weights
    start = [np.array(w) for w in model.weights]
    model.train_on_batch(np.ones((2, 4), "float32"), np.zeros((2, 2), "float32"))
    steps = [np.abs(np.array(w) - s).max() for w, s in zip(model.weights, start, strict=True)]
    # Adam's first step moves each weight by its learning rate.
    np.testing.assert_allclose(steps[:2], 1e-3, rtol=1e-2)
    np.testing.assert_allclose(steps[2:], 1e-2, rtol=1e-2)


def test_bad_tower_names_are_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"freeze='audio_backbone' names no tower.*text_backbone"):
        _train(tmp_path / "a", freeze=("audio_backbone",))
    assert not (tmp_path / "a" / "checkpoints").exists()
    with pytest.raises(ValueError, match=r"unfreeze_epoch=2: expected an epoch before the last \(epochs=2\)"):
        _train(tmp_path / "b", freeze=("text",), unfreeze_epoch=2, epochs=2)
    with pytest.raises(ValueError, match=r"unfreeze_epoch=1 needs towers to freeze"):
        _train(tmp_path / "c", unfreeze_epoch=1, epochs=2)


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_a_kill_in_the_unfrozen_epoch_resumes_exactly(tmp_path):
    options = dict(freeze=TOWERS, unfreeze_epoch=1, epochs=2, backbone_lr_multiplier=0.1)
    reference = _train(tmp_path / "reference", **options)

    def kill(step, ids):
        # After step 6 of 8; the newest checkpoint is the frozen epoch's end (step 4).
        if step == 6:
            raise _Killed

    with pytest.raises(_Killed):
        _train(tmp_path / "killed", on_batch_ids=kill, checkpoint_every=0, **options)
    assert tf.train.latest_checkpoint(str(tmp_path / "killed" / "checkpoints")).endswith("ckpt-4")
    resumed = _train(tmp_path / "killed", checkpoint_every=0, **options)
    assert resumed.resumed_from_step == 4
    for a, b in zip(resumed.model.weights, reference.model.weights, strict=True):
        np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=a.path)
