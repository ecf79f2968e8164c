"""Every zoo layer through the zoo's layer contract and through Keras' own harness,
plus each layer's behaviour."""

import numpy as np
import pytest
from keras.src.testing import TestCase as KerasTestCase

from zoo.layers import (
    CrossModalAttention,
    FiLM,
    GatedFusion,
    LateFusion,
    MaskedGlobalAveragePooling1D,
    SinusoidalPositionEncoding,
    TransformerEncoderBlock,
    WeightedSumFusion,
)
from zoo.testing import run_layer_test

rng = np.random.default_rng(0)
A = rng.normal(size=(3, 6)).astype("float32")
B = rng.normal(size=(3, 6)).astype("float32")
MAP = rng.normal(size=(3, 4, 4, 5)).astype("float32")
SEQ = rng.normal(size=(3, 7, 8)).astype("float32")
POSITIONS = rng.normal(size=(3, 9, 5)).astype("float32")

# (layer class, constructor arguments, inputs, output shape, trainable weights, whether it trains)
LAYER_CASES = {
    "weighted_sum_fixed": (WeightedSumFusion, {"alpha": 0.3}, [A, B], (3, 6), 0, False),
    "weighted_sum_learned": (WeightedSumFusion, {"learned": True}, [A, B], (3, 6), 1, True),
    "gated": (GatedFusion, {"units": 4}, [A, B[:, :5]], (3, 4), 6, True),
    "film": (FiLM, {}, [MAP, A], MAP.shape, 2, True),
    "late": (LateFusion, {}, [A, B], (3, 6), 0, False),
    # MultiHeadAttention: 4 kernels + 4 biases; LayerNormalization: gamma + beta.
    "cross_attention": (
        CrossModalAttention, {"num_heads": 2, "key_dim": 4, "dropout": 0.0}, [SEQ, POSITIONS], SEQ.shape, 10, True
    ),
    "masked_pooling": (MaskedGlobalAveragePooling1D, {}, SEQ, (3, 8), 0, False),
    "position_encoding": (SinusoidalPositionEncoding, {"max_wavelength": 100.0}, SEQ, SEQ.shape, 0, False),
    # Two LayerNormalizations (4), MultiHeadAttention (8), two Dense (4).
    "transformer": (TransformerEncoderBlock, {"num_heads": 2, "ff_dim": 16, "dropout": 0.1}, SEQ, SEQ.shape, 16, True),
}


@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_layer_contract(case):
    layer_class, kwargs, data, shape, trainable, trains = LAYER_CASES[case]
    run_layer_test(
        layer_class,
        kwargs,
        data,
        expected_output_shape=shape,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=0,
        check_training=trains,
    )


@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_layer_passes_keras_own_harness(case):
    """Keras' `run_layer_test`, mixed-precision check included.

    It drives multi-input layers when their inputs are a tuple (a list breaks
    its training step's tf.data generator signature), so no layer needs a
    fallback to the zoo's harness.
    """
    layer_class, kwargs, data, shape, trainable, trains = LAYER_CASES[case]
    KerasTestCase().run_layer_test(
        layer_class,
        kwargs,
        input_data=tuple(data) if isinstance(data, list) else data,
        expected_output_shape=shape,
        expected_output_dtype="float32",
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=0,
        run_training_check=trains,
        run_mixed_precision_check=True,
    )


def test_weighted_sum_fixed():
    out = WeightedSumFusion(alpha=0.3)([A, B])
    np.testing.assert_allclose(out, 0.3 * A + 0.7 * B, rtol=1e-6)


def test_weighted_sum_learned_starts_equal():
    layer = WeightedSumFusion(learned=True)
    np.testing.assert_allclose(layer([A, B]), 0.5 * (A + B), rtol=1e-6)


def test_weighted_sum_rejects_bad_alpha_and_shapes():
    with pytest.raises(ValueError, match="alpha=1.5"):
        WeightedSumFusion(alpha=1.5)
    with pytest.raises(ValueError, match="one shape"):
        WeightedSumFusion()([A, B[:, :4]])


def test_gated_fusion_rejects_bad_units():
    with pytest.raises(ValueError, match="units=0"):
        GatedFusion(0)


def test_film_is_identity_at_init():
    np.testing.assert_allclose(FiLM()([MAP, A]), MAP, rtol=1e-6)


def test_late_fusion_averages():
    np.testing.assert_allclose(LateFusion()([A, B]), (A + B) / 2, rtol=1e-6)


def test_cross_modal_attention_scores():
    out, scores = CrossModalAttention(2, 4)([SEQ, POSITIONS], return_attention_scores=True)
    assert scores.shape == (3, 2, 7, 9)
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, rtol=1e-5)


def test_cross_modal_attention_ignores_padded_words():
    layer = CrossModalAttention(2, 4)
    mask = np.ones((3, 7), bool)
    mask[:, 4:] = False
    changed = SEQ.copy()
    changed[:, 4:] = 100.0
    first = layer([SEQ, POSITIONS], mask=[mask, None])
    second = layer([changed, POSITIONS], mask=[mask, None])
    np.testing.assert_allclose(np.asarray(first)[:, :4], np.asarray(second)[:, :4], atol=1e-5)


def test_masked_pooling_ignores_padding_and_handles_empty():
    mask = np.zeros((3, 7), bool)
    mask[0, :3] = True
    mask[1, :7] = True
    out = np.asarray(MaskedGlobalAveragePooling1D()(SEQ, mask=mask))
    np.testing.assert_allclose(out[0], SEQ[0, :3].mean(0), rtol=1e-5)
    np.testing.assert_allclose(out[1], SEQ[1].mean(0), rtol=1e-5)
    np.testing.assert_allclose(out[2], 0.0)


def test_position_encoding_depends_on_position():
    out = np.asarray(SinusoidalPositionEncoding()(np.zeros((1, 5, 8), "float32")))
    assert not np.allclose(out[0, 0], out[0, 1])


def test_transformer_block_padding_does_not_leak():
    layer = TransformerEncoderBlock(2, 16)
    mask = np.ones((3, 7), bool)
    mask[:, 5:] = False
    changed = SEQ.copy()
    changed[:, 5:] = -50.0
    np.testing.assert_allclose(
        np.asarray(layer(SEQ, mask=mask))[:, :5], np.asarray(layer(changed, mask=mask))[:, :5], atol=1e-5
    )
    with pytest.raises(ValueError, match="num_heads=3"):
        TransformerEncoderBlock(3)(SEQ)
