"""Per-input towers and head: together they compute the model, and cutting leaves the model as it was."""

import keras
import numpy as np
import pytest
from export_helpers import build_tiny

from zoo.export.tower_split import split_towers

# Each model and its towers: input name -> compiled by serving (False: the
# convolutional image tower, run outside XLA).
SPLITS = {
    "cnn_lstm_concat": {"image": False, "token_ids": True},
    "cnn_lstm_xattn": {"image": False, "token_ids": True},
    "cnn_lstm_multitask": {"image": False, "token_ids": True},
    "cnn_image": {"image": False},
    "cnn_audio_lstm_gated": {"audio": True, "image": False, "token_ids": True},
}


def _inputs(model, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for tensor in model.inputs:
        shape = (batch, *(800 if d is None else d for d in tensor.shape[1:]))  # audio: any length
        if "int" in str(tensor.dtype):
            ids = rng.integers(1, 16, shape).astype("int32")
            ids[:, shape[1] // 2 :] = 0  # padding, so masks are exercised
            feeds[tensor.name] = ids
        else:
            feeds[tensor.name] = rng.uniform(-1, 1, shape).astype("float32")
    return feeds


def _run_split(split, feeds):
    outputs = {tower.input_name: tower.function([feeds[tower.input_name]]) for tower in split.towers}
    head_inputs = [feeds[name] if index is None else outputs[name][index] for name, index in split.head_sources]
    return split.head(head_inputs)


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_towers_then_head_compute_the_model(name):
    keras.utils.set_random_seed(0)
    model = build_tiny(name)
    split = split_towers(model)
    assert {tower.input_name: tower.compiled for tower in split.towers} == SPLITS[name]
    feeds = _inputs(model)
    expected = model({t.name: feeds[t.name] for t in model.inputs}, training=False)
    got = _run_split(split, feeds)
    keras.tree.assert_same_structure(got, expected)
    for g, e in zip(keras.tree.flatten(got), keras.tree.flatten(expected), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), atol=1e-6)


@pytest.mark.parametrize("name", ["lstm_seed", "melcnn_audio", "rnn_text"])
def test_no_split_without_a_convolutional_image_tower(name):
    assert split_towers(build_tiny(name)) is None


def test_a_subclassed_model_has_no_split():
    class Plain(keras.Model):
        def call(self, x):
            return x

    assert split_towers(Plain()) is None


def test_cutting_leaves_the_model_as_it_was():
    model = build_tiny("cnn_lstm_xattn")
    nodes = {layer.name: len(layer._inbound_nodes) for layer in model.layers}
    config = model.to_json()
    first = split_towers(model)
    second = split_towers(model)
    assert {layer.name: len(layer._inbound_nodes) for layer in model.layers} == nodes
    assert model.to_json() == config
    assert [t.input_name for t in first.towers] == [t.input_name for t in second.towers]
    assert first.head_sources == second.head_sources
