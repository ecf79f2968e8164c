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


def _damaged(tmp_path, how):
    path = tmp_path / "model.keras"
    _plain(path)
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "bad-crc":
        # Flip a byte inside the first member's compressed data (after its 30-byte header and name).
        name_length = int.from_bytes(data[26:28], "little")
        extra_length = int.from_bytes(data[28:30], "little")
        data[30 + name_length + extra_length + 5] ^= 0xFF
    else:
        data = b""
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how, cause", [
    ("truncated", "the end of the zip archive is missing"),
    ("bad-crc", "fails its CRC check|Bad CRC|Error -3"),
    ("empty", "the file is empty"),
])
def test_damaged_file_is_named_truncated_or_corrupt(tmp_path, how, cause):
    from zoo.export import CorruptModelError

    path = _damaged(tmp_path, how)
    with pytest.raises(CorruptModelError, match=cause) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "truncated or corrupt" in message


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_model(tmp_path / "missing.keras")
    assert caught.value.filename == str(tmp_path / "missing.keras")
    assert str(tmp_path / "missing.keras") in str(caught.value)


def test_other_files_are_not_called_corrupt(tmp_path):
    from zoo.export import CorruptModelError

    (tmp_path / "h5.keras").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    (tmp_path / "text.keras").write_text("hello")
    for name in ("h5.keras", "text.keras"):
        with pytest.raises(ValueError, match="is not a .keras model file") as caught:
            load_model(tmp_path / name)
        assert not isinstance(caught.value, CorruptModelError)
