"""Small convolutions as patch products: the same values as the convolution, and only where they pay."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.export import small_convolutions
from zoo.export.small_convolutions import patch_product, small_convolutions_as_products


@pytest.mark.parametrize(
    "size, kernel, strides, padding",
    [
        ((12, 12), (3, 3), (1, 1), "valid"),
        ((13, 11), (3, 3), (1, 1), "same"),
        ((13, 11), (3, 3), (2, 2), "same"),
        ((10, 9), (5, 3), (2, 1), "valid"),
        ((8, 8), (4, 4), (2, 2), "same"),  # even kernel: TensorFlow pads one more at the end
        ((7, 7), (1, 1), (1, 1), "valid"),
    ],
)
def test_patch_product_is_the_convolution(size, kernel, strides, padding):
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(2, *size, 3)).astype("float32"))
    weights = tf.constant(rng.normal(size=(*kernel, 3, 5)).astype("float32"))
    expected = tf.nn.conv2d(inputs, weights, strides, padding.upper())
    got = patch_product(inputs, weights, strides, padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_patch_product_names_a_padding_it_does_not_take():
    with pytest.raises(ValueError, match="'causal'"):
        patch_product(tf.zeros([1, 4, 4, 1]), tf.zeros([3, 3, 1, 1]), (1, 1), "causal")


def _model():
    images = keras.Input((12, 12, 2))
    x = keras.layers.Conv2D(4, 3, name="small")(images)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="strided")(x)
    x = keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", name="dilated")(x)
    return keras.Model(images, keras.layers.GlobalAveragePooling2D()(x))


def _convolution_ops(function, batch) -> int:
    graph = function.get_concrete_function(tf.TensorSpec([batch, 12, 12, 2])).graph
    return sum(op.type == "Conv2D" for op in graph.get_operations())


def test_small_batches_of_small_convolutions_trace_as_products_with_the_same_values():
    keras.utils.set_random_seed(0)
    model = _model()
    images = np.random.default_rng(1).uniform(size=(9, 12, 12, 2)).astype("float32")
    expected = model(images).numpy()

    def call(x):
        with small_convolutions_as_products(model, max_rows=4):
            return model(x)

    compiled = tf.function(call, jit_compile=True)
    # Below 4 rows only the dilated layer, which the product form does not take, convolves.
    assert _convolution_ops(tf.function(call), 3) == 1
    assert _convolution_ops(tf.function(call), 4) == 3
    for rows in (1, 3, 4, 9):
        np.testing.assert_allclose(compiled(images[:rows]), expected[:rows], atol=1e-5)
    # A batch size unknown when tracing decides when compiled, with the same values.
    unknown = tf.function(call, input_signature=[tf.TensorSpec([None, 12, 12, 2])], jit_compile=True)
    for rows in (1, 9):
        np.testing.assert_allclose(unknown(images[:rows]), expected[:rows], atol=1e-5)
    # The layers have their own convolutions back.
    assert _convolution_ops(tf.function(model), 1) == 3
    assert all("convolution_op" not in vars(layer) for layer in model.layers)


def test_large_feature_maps_and_nested_scopes_keep_what_they_had(monkeypatch):
    model = _model()
    outer = keras.Sequential([keras.Input((12, 12, 2)), model])

    def nested(x):
        with small_convolutions_as_products(outer, max_rows=4):
            with small_convolutions_as_products(model, max_rows=4):
                return outer(x)

    assert _convolution_ops(tf.function(nested), 1) == 1
    assert all("convolution_op" not in vars(layer) for layer in model.layers)
    # The first layer reads 10 x 10 positions of 3 x 3 x 2 values: 1,800 per image.
    monkeypatch.setattr(small_convolutions, "MAX_PATCH_VALUES", 1_799)

    def call(x):
        with small_convolutions_as_products(model, max_rows=4):
            return model(x)

    assert _convolution_ops(tf.function(call), 1) == 2
