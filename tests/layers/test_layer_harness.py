"""The zoo's layer harness catches each way a layer can break the contract."""

import keras
import numpy as np
import pytest

from zoo.testing import run_layer_test

X = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")


@keras.saving.register_keras_serializable(package="zoo_harness_test")
class _Projection(keras.layers.Layer):
    """A correct layer; the subclasses below each break one rule."""

    def __init__(self, units: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.dense = keras.layers.Dense(self.units, dtype=self.dtype_policy)
        self.dense.build(input_shape)

    def call(self, inputs):
        return self.dense(inputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="zoo_harness_test")
class _DefaultDtypeSublayer(_Projection):
    def build(self, input_shape):
        self.dense = keras.layers.Dense(self.units)  # float32 policy whatever the layer's
        self.dense.build(input_shape)


@keras.saving.register_keras_serializable(package="zoo_harness_test")
class _ForgetsUnits(_Projection):
    def get_config(self):
        return keras.layers.Layer.get_config(self)


@keras.saving.register_keras_serializable(package="zoo_harness_test")
class _DropsDtype(_Projection):
    def get_config(self):
        return {"units": self.units}


@keras.saving.register_keras_serializable(package="zoo_harness_test")
class _WrongOutputShape(_Projection):
    def compute_output_shape(self, input_shape):
        return input_shape


def test_a_correct_layer_passes():
    run_layer_test(_Projection, {"units": 4}, X, expected_output_shape=(2, 4), expected_num_trainable_weights=2)


@pytest.mark.parametrize(
    "layer_class, kwargs, message",
    [
        (_DefaultDtypeSublayer, {}, "under mixed_float16: output dtype float32, expected float16"),
        (_ForgetsUnits, {"units": 4}, "lacks constructor argument 'units'"),
        (_DropsDtype, {}, "dtype policy mixed_float16 came back as float32"),
        (_WrongOutputShape, {}, r"symbolic call on batch 2 gave shape \(2, 3\), expected \(2, 4\)"),
        (_Projection, {"expected_trainable": 3}, "2 trainable weights, expected 3"),
    ],
    ids=["sublayer_dtype", "config", "serialized_dtype", "output_shape", "weight_count"],
)
def test_a_broken_layer_is_caught(layer_class, kwargs, message):
    trainable = kwargs.pop("expected_trainable", None)
    with pytest.raises(AssertionError, match=message):
        run_layer_test(layer_class, kwargs, X, expected_num_trainable_weights=trainable)
