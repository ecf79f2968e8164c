"""Round-trip checks for layers and models: config, `.keras` save/load, masking, training."""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np

from zoo.core import keys


def _as_list(x):
    return list(x) if isinstance(x, list | tuple) else [x]


def _assert_close(actual, expected, atol=1e-5, what="outputs"):
    actual_leaves = keras.tree.flatten(actual)
    expected_leaves = keras.tree.flatten(expected)
    assert len(actual_leaves) == len(expected_leaves), f"{what}: structures differ"
    for a, e in zip(actual_leaves, expected_leaves, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(e), atol=atol, rtol=1e-5, err_msg=what
        )


def _single_output(outputs):
    leaves = keras.tree.flatten(outputs)
    return leaves[0] if len(leaves) == 1 else keras.layers.Concatenate()([keras.layers.Flatten()(t) for t in leaves])


def run_layer_test(
    layer_class,
    init_kwargs: dict,
    input_data,
    *,
    expected_output_shape=None,
    input_dtypes=None,
    check_training: bool = True,
    atol: float = 1e-5,
):
    """Checks the layer contract for `layer_class(**init_kwargs)` on `input_data`.

    1. The output has `expected_output_shape` (and `compute_output_shape` agrees).
    2. `get_config` -> `from_config` -> `get_config` gives an identical config.
    3. Inside a functional model, a `.keras` save and load gives identical outputs.
    4. One optimizer step on a fixed batch lowers a regression loss (skipped
       with `check_training=False` for layers without weights).

    Args:
        layer_class: the layer class.
        init_kwargs: constructor arguments.
        input_data: one array or a list of arrays (batch first).
        expected_output_shape: the full output shape, batch included.
        input_dtypes: dtypes for the model inputs (default: each array's dtype).
        check_training: whether to run step 4.
        atol: tolerance for output comparisons.

    Returns:
        The built functional model wrapping the layer.
    """
    arrays = _as_list(input_data)
    multi = isinstance(input_data, list | tuple)
    dtypes = input_dtypes or [str(a.dtype) for a in arrays]

    layer = layer_class(**init_kwargs)
    eager_output = layer(list(arrays) if multi else arrays[0])
    if expected_output_shape is not None:
        assert tuple(eager_output.shape) == tuple(expected_output_shape), (
            f"{layer_class.__name__}: output shape {tuple(eager_output.shape)} != expected {tuple(expected_output_shape)}"
        )
        computed = layer.compute_output_shape([tuple(a.shape) for a in arrays] if multi else tuple(arrays[0].shape))
        assert tuple(computed) == tuple(expected_output_shape), (
            f"{layer_class.__name__}.compute_output_shape gave {tuple(computed)}"
        )

    config = layer.get_config()
    rebuilt = layer_class.from_config(config)
    assert rebuilt.get_config() == config, f"{layer_class.__name__}: config changed in a round trip"
    for key in init_kwargs:
        assert key in config, f"{layer_class.__name__}.get_config() lacks constructor argument {key!r}"

    inputs = [keras.Input(shape=a.shape[1:], dtype=d, name=f"input_{i}") for i, (a, d) in enumerate(zip(arrays, dtypes, strict=True))]
    output = layer_class(**init_kwargs)(inputs if multi else inputs[0])
    model = keras.Model(inputs, output)
    expected = model(arrays, training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    _assert_close(loaded(arrays, training=False), expected, atol, f"{layer_class.__name__} after .keras round trip")

    if check_training:
        _check_loss_decreases(model, arrays)
    return model


def _check_loss_decreases(model, arrays):
    features = keras.layers.Flatten()(_single_output(model.outputs))
    prediction = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(features)
    trainer = keras.Model(model.inputs, prediction)
    # Adam's step is bounded by the learning rate, so one small step lowers a smooth loss.
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    targets = np.random.default_rng(0).normal(size=(arrays[0].shape[0], 1)).astype("float32")
    before = trainer.evaluate(arrays, targets, verbose=0)
    trainer.train_on_batch(arrays, targets)
    after = trainer.evaluate(arrays, targets, verbose=0)
    assert after < before, f"one training step did not lower the loss ({before} -> {after})"


def random_inputs(model: keras.Model, batch_size: int = 4, seed: int = 0, pad_to: int | None = None) -> dict:
    """Random inputs for a zoo model, keyed by input name.

    Images are uniform in [0, 1]; token ids are random words followed by
    padding (0) so that masking is exercised. `pad_to` keeps only that many
    real tokens at most.
    """
    rng = np.random.default_rng(seed)
    batch = {}
    for tensor in model.inputs:
        name = tensor.name
        shape = (batch_size, *tensor.shape[1:])
        if name == keys.TOKEN_IDS:
            vocab = _vocab_size(model)
            length = shape[1]
            ids = rng.integers(2, vocab, size=shape).astype("int32")
            lengths = rng.integers(1, (pad_to or length) + 1, size=batch_size)
            ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
            batch[name] = ids
        else:
            batch[name] = rng.uniform(size=shape).astype("float32")
    return batch


def _vocab_size(model) -> int:
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return layer.input_dim
    raise ValueError(f"model {model.name!r} takes token ids but has no Embedding layer")


def sample_targets(model: keras.Model, batch_size: int, seed: int = 0):
    """Random integer class labels matching each output of `model` (a dict for multi-output models)."""
    rng = np.random.default_rng(seed)

    def labels(output):
        # One label per output position: [batch] for classifiers, [batch, T] for decoders.
        return rng.integers(0, output.shape[-1], size=(batch_size, *output.shape[1:-1]))

    if isinstance(model.output, dict):
        return {name: labels(t) for name, t in model.output.items()}
    return labels(model.output)


def run_model_test(model: keras.Model, batch_size: int = 4, seed: int = 0, atol: float = 1e-5):
    """Forward, one training step that lowers the loss, and a `.keras` round trip.

    Returns:
        The inputs used, so callers can run further checks on them.
    """
    inputs = random_inputs(model, batch_size, seed)
    outputs = model(inputs, training=False)
    for leaf in keras.tree.flatten(outputs):
        array = keras.ops.convert_to_numpy(leaf)
        assert array.shape[0] == batch_size and np.isfinite(array).all(), f"{model.name}: bad forward output"

    targets = sample_targets(model, batch_size, seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    before = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    model.train_on_batch(inputs, targets)
    after = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    assert after < before, f"{model.name}: one training step did not lower the loss ({before} -> {after})"

    expected = model(inputs, training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    _assert_close(loaded(inputs, training=False), expected, atol, f"{model.name} after .keras round trip")
    return inputs
