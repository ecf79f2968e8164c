"""Each head trains with its own loss through `zoo.train`: classification, multi-label, regression, multi-task."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

import zoo
from tests.training import synthetic
from zoo.training.steps import output_tasks

EXAMPLES, BATCH, CLASSES = 32, 8, 4


def _data(target):
    """Batches of the synthetic examples with labels made by `target(label)`."""

    def fn(input_context):
        return synthetic.examples(EXAMPLES).map(lambda f, y: (f, target(y))).batch(BATCH)

    return fn


def _multi_hot(label):
    # Classes "label mod 4" and "label is even": two of four on at once, sometimes one.
    return tf.clip_by_value(tf.one_hot(label % CLASSES, CLASSES) + tf.one_hot(2 * (label % 2), CLASSES), 0.0, 1.0)


def _regression(label):
    return tf.stack([tf.cast(label, tf.float32) / 10.0, 1.0 - tf.cast(label, tf.float32) / 10.0])


CASES = {
    "classification": (
        synthetic.TINY_MODEL, {"num_classes": 10}, lambda y: y,
        {"": keras.losses.SparseCategoricalCrossentropy}, "accuracy",
    ),
    "multilabel": (
        synthetic.TINY_MODEL, {"task": "multilabel", "num_classes": CLASSES}, _multi_hot,
        {"": keras.losses.BinaryCrossentropy}, "binary_accuracy",
    ),
    "regression": (
        synthetic.TINY_MODEL, {"task": "regression", "num_classes": 2}, _regression,
        {"": keras.losses.MeanSquaredError}, "mae",
    ),
    "multitask": (
        "cnn_lstm_multitask", {"tasks": (("digit", 10), ("parity", 2))},
        lambda y: {"digit": y, "parity": y % 2},
        {"digit": keras.losses.SparseCategoricalCrossentropy, "parity": keras.losses.SparseCategoricalCrossentropy},
        "digit_accuracy",
    ),
}


@pytest.mark.parametrize(
    "case",
    # Multi-label and regression are what the old loop got wrong; the other two are slow-only.
    ["multilabel", "regression", pytest.param("classification", marks=pytest.mark.slow),
     pytest.param("multitask", marks=pytest.mark.slow)],
)
def test_each_head_trains_with_its_loss(tmp_path, case):
    name, overrides, target, losses, metric = CASES[case]
    tiny = {k: v for k, v in synthetic.TINY_OVERRIDES.items() if k != "head_dropout"}
    result = zoo.train(
        name, out=tmp_path, model_overrides={**tiny, "head_dropout": 0.0, **overrides},
        dataset_fn=_data(target), batch_size=BATCH, epochs=4, learning_rate=0.01, seed=2,
        checkpoint_every=0, verbose=0,
    )
    compiled = result.model.loss
    if "" in losses:
        assert isinstance(compiled, losses[""]), compiled
    else:
        assert set(compiled) == set(losses)
        for key, cls in losses.items():
            assert isinstance(compiled[key], cls), (key, compiled[key])
    assert metric in result.metrics
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    assert last < first, [epoch["loss"] for epoch in result.history]


def test_an_output_without_a_known_activation_is_refused():
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="relu", name="out")(inputs))
    with pytest.raises(ValueError, match="Cannot tell the task .* layer 'out' \\(activation 'relu'\\)"):
        output_tasks(model)
    assert output_tasks(zoo.build(synthetic.TINY_MODEL, task="regression")) == "regression"
