"""The fused convolution + max pooling computes what the two Keras layers compute, and only where asked."""

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.layers import conv_pool, conv_pool_tf

RNG = np.random.default_rng(0)


def _images(shape):
    images = RNG.random(shape, dtype=np.float32)
    # Blank regions, as in MNIST: every position of such a pooling window ties.
    return np.where(images < 0.4, 0.0, images).astype("float32")


def _reference(inputs, kernel, bias, padding, relu):
    outputs = tf.nn.bias_add(tf.nn.conv2d(inputs, kernel, 1, padding.upper()), bias)
    return tf.nn.max_pool2d(tf.nn.relu(outputs) if relu else outputs, 2, 2, "VALID")


@pytest.mark.parametrize(
    ("shape", "kernel_shape", "padding"),
    [((4, 28, 28, 1), (3, 3, 1, 32), "valid"), ((3, 11, 9, 3), (3, 3, 3, 8), "same"), ((2, 9, 10, 2), (2, 3, 2, 4), "valid")],
)
@pytest.mark.parametrize("relu", [True, False])
def test_outputs_and_gradients_match_tensorflow(shape, kernel_shape, padding, relu):
    inputs = tf.constant(_images(shape))
    kernel = tf.constant(RNG.normal(size=kernel_shape).astype("float32"))
    bias = tf.constant(RNG.normal(size=kernel_shape[-1:]).astype("float32"))
    results = []
    for function in (_reference, conv_pool_tf.conv_pool):
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel, bias])
            if function is _reference:
                outputs = function(inputs, kernel, bias, padding, relu)
            else:
                outputs = function(inputs, kernel, bias, padding=padding, relu=relu)
            upstream = tf.constant(np.random.default_rng(1).normal(size=outputs.shape).astype("float32"))
            loss = tf.reduce_sum(outputs * upstream)
        results.append([outputs, *tape.gradient(loss, [inputs, kernel, bias])])
    for fused, expected in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=5e-5)


def _tower(**conv_options):
    images = keras.Input((12, 12, 1), name="image")
    features = keras.layers.Conv2D(4, 3, activation="relu", name="conv", **conv_options)(images)
    pooled = keras.layers.MaxPooling2D(2, name="pool")(features)
    return keras.Model(images, keras.layers.Flatten()(pooled))


def test_the_seed_models_first_convolution_is_fused_and_the_wide_one_is_not():
    model = zoo.build("cnn_lstm_concat_seed")
    pairs = [(convolution.name, pool.name) for convolution, pool in conv_pool.fusable_pairs(model)]
    # The second convolution reads 32 channels: 288 products per output.
    assert pairs == [("image_conv1", "image_pool1")]


@pytest.mark.parametrize(
    "change",
    ["stride", "read_twice", "three_pool", "wide", "sigmoid"],
)
def test_pairs_it_cannot_compute_are_left_alone(change):
    images = keras.Input((12, 12, 3 if change == "wide" else 1))
    options = {"strides": 2} if change == "stride" else {}
    activation = "sigmoid" if change == "sigmoid" else "relu"
    kernel = 5 if change == "wide" else 3
    features = keras.layers.Conv2D(4, kernel, activation=activation, **options)(images)
    pooled = keras.layers.MaxPooling2D(3 if change == "three_pool" else 2)(features)
    outputs = [keras.layers.Flatten()(pooled)]
    if change == "read_twice":
        outputs.append(keras.layers.GlobalAveragePooling2D()(features))
    assert conv_pool.fusable_pairs(keras.Model(images, outputs)) == []


def test_scope_computes_the_same_model_and_restores_the_layers():
    model = _tower(padding="same")
    images = _images((5, 12, 12, 1))
    expected = model(images)
    convolution = model.get_layer("conv")
    with conv_pool.fused_convolution_pools(model):
        fused = tf.function(lambda x: model(x))(tf.constant(images))
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    assert "call" not in vars(convolution) and "call" not in vars(model.get_layer("pool"))


def test_images_of_unknown_size_run_the_layers_as_they_are():
    # As after an augmentation whose output loses the static image size.
    model = _tower()
    images = _images((3, 12, 12, 1))
    expected = model(images)
    with conv_pool.fused_convolution_pools(model):
        call = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec([None, None, None, 1])])
        np.testing.assert_allclose(call(tf.constant(images)), expected, rtol=1e-5, atol=1e-6)


def test_scope_holds_in_its_own_thread_only():
    model = _tower()
    convolution = model.get_layer("conv")
    images = tf.constant(_images((2, 12, 12, 1)))
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def other_thread():
        inside.wait()
        seen["other"] = convolution(images).shape
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with conv_pool.fused_convolution_pools(model):
        seen["own"] = convolution(images).shape
        inside.set()
        done.wait(timeout=60)
    thread.join()
    # In the scope the convolution hands its input on to the pooling, which computes both.
    assert seen == {"own": (2, 12, 12, 1), "other": (2, 10, 10, 4)}


def test_training_steps_of_the_seed_model_take_the_same_gradients():
    model = zoo.build("cnn_lstm_concat_seed", vocab_size=50, max_length=6)
    feeds = {
        "image": tf.constant(_images((8, 28, 28, 1))),
        "token_ids": tf.constant(RNG.integers(0, 50, size=(8, 6)).astype("int32")),
    }
    labels = tf.constant(RNG.integers(0, 10, size=8))

    def gradients():
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(labels, model(feeds, training=True))
        return tape.gradient(loss, model.trainable_variables)

    expected = tf.function(gradients)()
    with conv_pool.fused_convolution_pools(model):
        fused = tf.function(gradients)()
    for got, want in zip(fused, expected, strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(got), tf.convert_to_tensor(want), rtol=1e-4, atol=1e-6)
