"""Contract checks for layers and models: shapes, symbolic calls, config and `.keras`
round trips, mixed precision, training."""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np

from zoo.core import keys
from zoo.layers.contrastive import ContrastiveHead, ContrastiveLoss


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
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    check_training: bool = True,
    check_mixed_precision: bool = True,
    atol: float = 1e-5,
    mixed_precision_atol: float = 2e-2,
):
    """Checks the layer contract for `layer_class(**init_kwargs)` on `input_data`.

    1. Eager call: the output has `expected_output_shape` and
       `compute_output_shape` agrees; the built layer has the expected numbers
       of trainable and non-trainable weights, and `build` alone creates them all.
    2. Symbolic call on `keras.KerasTensor` inputs (the data's shapes, and with an
       unknown batch size): output shapes and dtypes match the eager output and
       `compute_output_spec`.
    3. Config: `get_config` holds every constructor argument and survives
       `from_config` and `keras.saving.serialize_keras_object` /
       `deserialize_keras_object`.
    4. Per-layer mixed precision (`dtype="mixed_float16"` on the layer): float
       outputs are float16 and agree with `compute_output_spec`, every float
       variable stays float32, the policy survives serialization, and with the
       float32 layer's weights the outputs agree within `mixed_precision_atol`.
    5. Inside a functional model, a `.keras` save and load gives identical outputs.
    6. One optimizer step on a fixed batch lowers a regression loss.

    Args:
        layer_class: the layer class.
        init_kwargs: constructor arguments.
        input_data: one array, or a list of arrays for a multi-input layer (batch first).
        expected_output_shape: the full output shape, batch included.
        input_dtypes: dtypes for the model inputs (default: each array's dtype).
        expected_num_trainable_weights: if given, the built layer's count of trainable weights.
        expected_num_non_trainable_weights: if given, its count of non-trainable weights.
        check_training: whether to run step 6 (turn off for layers without weights).
        check_mixed_precision: whether to run step 4.
        atol: tolerance for float32 output comparisons.
        mixed_precision_atol: tolerance between the float16 and float32 outputs.

    Returns:
        The built functional model wrapping the layer.

    Raises:
        AssertionError: naming the layer class and the check that failed.
    """
    name = layer_class.__name__
    arrays = _as_list(input_data)
    multi = isinstance(input_data, list | tuple)
    dtypes = input_dtypes or [str(a.dtype) for a in arrays]

    def as_call_input(items):
        return list(items) if multi else items[0]

    layer = layer_class(**init_kwargs)
    eager_output = layer(as_call_input(arrays))
    if expected_output_shape is not None:
        assert tuple(eager_output.shape) == tuple(expected_output_shape), (
            f"{name}: output shape {tuple(eager_output.shape)} != expected {tuple(expected_output_shape)}"
        )
        computed = layer.compute_output_shape(as_call_input([tuple(a.shape) for a in arrays]))
        assert tuple(computed) == tuple(expected_output_shape), f"{name}.compute_output_shape gave {tuple(computed)}"
    _check_weight_counts(layer, expected_num_trainable_weights, expected_num_non_trainable_weights, "after a call")
    built = layer_class(**init_kwargs)
    built.build(as_call_input([tuple(a.shape) for a in arrays]))
    _check_weight_counts(built, len(layer.trainable_weights), len(layer.non_trainable_weights), "after build()")

    _check_symbolic_call(layer_class, init_kwargs, arrays, dtypes, as_call_input, eager_output)
    _check_config_round_trips(layer_class, init_kwargs)
    if check_mixed_precision:
        _check_mixed_precision(layer, layer_class, init_kwargs, arrays, dtypes, as_call_input, mixed_precision_atol)

    inputs = [keras.Input(shape=a.shape[1:], dtype=d, name=f"input_{i}") for i, (a, d) in enumerate(zip(arrays, dtypes, strict=True))]
    output = layer_class(**init_kwargs)(as_call_input(inputs))
    model = keras.Model(inputs, output)
    expected = model(arrays, training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    _assert_close(loaded(arrays, training=False), expected, atol, f"{name} after .keras round trip")

    if check_training:
        _check_loss_decreases(model, arrays)
    return model


def _check_weight_counts(layer, trainable, non_trainable, when):
    name = type(layer).__name__
    assert layer.built, f"{name} is not built {when}"
    if trainable is not None:
        assert len(layer.trainable_weights) == trainable, (
            f"{name} {when}: {len(layer.trainable_weights)} trainable weights, expected {trainable}: "
            f"{[w.path for w in layer.trainable_weights]}"
        )
    if non_trainable is not None:
        assert len(layer.non_trainable_weights) == non_trainable, (
            f"{name} {when}: {len(layer.non_trainable_weights)} non-trainable weights, expected {non_trainable}: "
            f"{[w.path for w in layer.non_trainable_weights]}"
        )


def _check_symbolic_call(layer_class, init_kwargs, arrays, dtypes, as_call_input, eager_output):
    name = layer_class.__name__
    eager_leaves = keras.tree.flatten(eager_output)
    for batch in (arrays[0].shape[0], None):
        # With batch None the layer must not depend on a concrete batch size.
        symbolic_inputs = [keras.KerasTensor((batch, *a.shape[1:]), dtype=d) for a, d in zip(arrays, dtypes, strict=True)]
        layer = layer_class(**init_kwargs)
        symbolic = keras.tree.flatten(layer(as_call_input(symbolic_inputs)))
        spec = keras.tree.flatten(layer.compute_output_spec(as_call_input(symbolic_inputs)))
        assert len(symbolic) == len(spec) == len(eager_leaves), f"{name}: symbolic and eager output structures differ"
        for tensor, out_spec, eager in zip(symbolic, spec, eager_leaves, strict=True):
            expected_shape = (batch, *eager.shape[1:])
            for what, got in (("symbolic call", tensor), ("compute_output_spec", out_spec)):
                assert tuple(got.shape) == expected_shape, (
                    f"{name}: {what} on batch {batch} gave shape {tuple(got.shape)}, expected {expected_shape}"
                )
                assert keras.backend.standardize_dtype(got.dtype) == keras.backend.standardize_dtype(eager.dtype), (
                    f"{name}: {what} gave dtype {got.dtype}, the eager call {eager.dtype}"
                )


def _check_config_round_trips(layer_class, init_kwargs):
    name = layer_class.__name__
    layer = layer_class(**init_kwargs)
    config = layer.get_config()
    for key in init_kwargs:
        assert key in config, f"{name}.get_config() lacks constructor argument {key!r}"
    rebuilt = layer_class.from_config(config)
    assert rebuilt.get_config() == config, f"{name}: config changed in a from_config round trip"
    for dtype in (None, "mixed_float16"):
        original = layer_class(**init_kwargs) if dtype is None else layer_class(**init_kwargs, dtype=dtype)
        serialized = keras.saving.serialize_keras_object(original)
        revived = keras.saving.deserialize_keras_object(serialized)
        assert type(revived) is layer_class, f"{name}: deserialized as {type(revived).__name__}"
        assert revived.get_config() == original.get_config(), f"{name}: config changed in a serialization round trip"
        assert revived.dtype_policy.name == original.dtype_policy.name, (
            f"{name}: dtype policy {original.dtype_policy.name} came back as {revived.dtype_policy.name}"
        )


def _check_mixed_precision(reference, layer_class, init_kwargs, arrays, dtypes, as_call_input, atol):
    name = layer_class.__name__
    layer = layer_class(**init_kwargs, dtype="mixed_float16")
    output = layer(as_call_input(arrays))
    # Keras casts float inputs to the compute dtype before `call`; the spec sees what `call` sees.
    spec_inputs = [
        keras.KerasTensor(a.shape, dtype=layer.compute_dtype if keras.backend.is_float_dtype(d) else d)
        for a, d in zip(arrays, dtypes, strict=True)
    ]
    spec = keras.tree.flatten(layer.compute_output_spec(as_call_input(spec_inputs)))
    for tensor, out_spec in zip(keras.tree.flatten(output), spec, strict=True):
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if keras.backend.is_float_dtype(dtype):
            assert dtype == "float16", f"{name} under mixed_float16: output dtype {dtype}, expected float16"
        assert dtype == keras.backend.standardize_dtype(out_spec.dtype), (
            f"{name} under mixed_float16: output dtype {dtype} but compute_output_spec says {out_spec.dtype}"
        )
    for variable in layer.weights:
        dtype = keras.backend.standardize_dtype(variable.dtype)
        if keras.backend.is_float_dtype(dtype):
            assert dtype == "float32", f"{name} under mixed_float16: variable {variable.path} is {dtype}, expected float32"
    layer.set_weights(reference.get_weights())
    _assert_close(
        layer(as_call_input(arrays)), reference(as_call_input(arrays)), atol, f"{name}: float16 vs float32 outputs"
    )


def _check_loss_decreases(model, arrays):
    features = keras.layers.Flatten()(_single_output(model.outputs))
    prediction = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(features)
    trainer = keras.Model(model.inputs, prediction)
    # Adam's step is bounded by the learning rate, so one small step lowers a smooth loss.
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    trainer.optimizer.build(trainer.trainable_variables)  # one trace of the step, not two
    targets = np.random.default_rng(0).normal(size=(arrays[0].shape[0], 1)).astype("float32")
    before = trainer.evaluate(arrays, targets, verbose=0)
    trainer.train_on_batch(arrays, targets)
    after = trainer.evaluate(arrays, targets, verbose=0)
    assert after < before, f"one training step did not lower the loss ({before} -> {after})"


def random_inputs(model: keras.Model, batch_size: int = 4, seed: int = 0, pad_to: int | None = None) -> dict:
    """Random inputs for a zoo model, keyed by input name.

    Images are uniform in [0, 1]; token ids are random words followed by
    padding (0) so that masking is exercised. `pad_to` keeps only that many
    real tokens at most. Audio is uniform in [-1, 1), 1,000 samples long
    when the input's length is unknown. KerasHub text inputs agree with the
    token ids: `padding_mask` is 1 on real tokens, `segment_ids` all 0.
    """
    rng = np.random.default_rng(seed)
    batch = {}
    derived = {"padding_mask", "segment_ids"}
    for tensor in model.inputs:
        if tensor.name in derived:
            continue
        name = tensor.name
        shape = (batch_size, *(1000 if d is None else d for d in tensor.shape[1:]))
        if name == keys.AUDIO:
            batch[name] = rng.uniform(-1.0, 1.0, size=shape).astype("float32")
        elif name == keys.TOKEN_IDS:
            vocab = _vocab_size(model)
            length = shape[1]
            ids = rng.integers(2, vocab, size=shape).astype("int32")
            lengths = rng.integers(1, (pad_to or length) + 1, size=batch_size)
            ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
            batch[name] = ids
        else:
            batch[name] = rng.uniform(size=shape).astype("float32")
    names = {tensor.name for tensor in model.inputs}
    if "padding_mask" in names:
        batch["padding_mask"] = (batch[keys.TOKEN_IDS] != 0).astype("int32")
    if "segment_ids" in names:
        batch["segment_ids"] = np.zeros_like(batch[keys.TOKEN_IDS])
    return batch


def _vocab_size(model) -> int:
    # A KerasHub backbone keeps its token embedding inside the nested model,
    # beside smaller ones (BERT's two segments); the largest is the vocabulary.
    sizes = [layer.input_dim for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.Embedding)]
    if sizes:
        return max(sizes)
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


def _targets_and_loss(model, inputs, batch_size, seed):
    # A dual encoder's targets say which pairs match: its captions (token ids).
    # Adam's first step moves every weight by the learning rate, and the logit
    # scale (1/0.07) magnifies that: 1e-3 overshoots on a 4-pair batch.
    head = model.layers[-1]
    if isinstance(head, ContrastiveHead):
        return inputs[keys.TOKEN_IDS], ContrastiveLoss(**head.loss_config()), 1e-4
    return sample_targets(model, batch_size, seed), "sparse_categorical_crossentropy", 1e-3


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

    targets, loss, learning_rate = _targets_and_loss(model, inputs, batch_size, seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    # Built before the first step: a step that creates the optimizer's variables
    # is traced twice (about 3 s more for a recurrent model on a 2-core CPU).
    model.optimizer.build(model.trainable_variables)
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


# Towers of unit-test size for models whose defaults are full pretrained
# backbones (the seed system's BERT-base + ResNet50: 134 M parameters, over a
# minute per catalog test on a CPU); their defaults get their own slow test.
_SMALL_TOWERS = {"text_backbone": "bert_tiny_en_uncased", "image_backbone": "resnet_tiny", "image_size": 32}


def small_overrides(name: str) -> dict:
    """Overrides that shrink a registered model's pretrained towers to unit-test size ({} for other models).

    Args:
        name: a registered model name.

    Returns:
        The overrides for `zoo.build(name, **overrides)`.
    """
    from zoo.registry import get_entry

    defaults = get_entry(name).defaults
    if "text_backbone" not in defaults:
        return {}
    return {k: v for k, v in _SMALL_TOWERS.items() if defaults.get(k) != v}
