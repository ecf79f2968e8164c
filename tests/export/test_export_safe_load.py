"""`.keras` files load in safe mode; Lambda layers are refused unless safe_mode=False is explicit."""

import keras
import numpy as np
import pytest

from zoo.export import UnsafeModelError, load_model
from zoo.export.safe_load import find_lambda_layers


def _plain(path):
    inputs = keras.Input((2,), name="image")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.save(path)
    return model


def _with_lambda(path, nested=False):
    inputs = keras.Input((2,), name="image")
    x = keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(inputs)
    inner = keras.Model(inputs, x, name="inner")
    if nested:
        outer_inputs = keras.Input((2,), name="image")
        model = keras.Model(outer_inputs, keras.layers.Dense(2)(inner(outer_inputs)))
    else:
        model = inner
    model.save(path)
    return model


def test_plain_model_loads(tmp_path):
    model = _plain(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    x = np.ones((1, 2), np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "nested-model"])
def test_lambda_refused_with_clear_message(tmp_path, nested):
    _with_lambda(tmp_path / "m.keras", nested=nested)
    assert find_lambda_layers(tmp_path / "m.keras") == ["doubler"]
    with pytest.raises(UnsafeModelError, match=r"Lambda layer\(s\) 'doubler'.*safe_mode=False"):
        load_model(tmp_path / "m.keras")


def test_global_unsafe_switch_does_not_turn_safe_mode_off(tmp_path):
    from keras.src.saving import serialization_lib

    _with_lambda(tmp_path / "m.keras")
    before = serialization_lib.in_safe_mode()
    keras.config.enable_unsafe_deserialization()
    try:
        with pytest.raises(UnsafeModelError):
            load_model(tmp_path / "m.keras")
    finally:
        serialization_lib.global_state.set_global_attribute("safe_mode_saving", before)


def test_explicit_unsafe_loads_lambda(tmp_path):
    _with_lambda(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", safe_mode=False)
    np.testing.assert_allclose(loaded.predict(np.ones((1, 2), np.float32), verbose=0), [[2.0, 2.0]])


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n")
    with pytest.raises(ValueError, match="not a .keras model file"):
        load_model(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="safe_mode"):
        _plain(tmp_path / "ok.keras")
        load_model(tmp_path / "ok.keras", safe_mode="no")
