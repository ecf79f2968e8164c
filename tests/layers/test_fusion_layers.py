import numpy as np
import pytest

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


def test_weighted_sum_fixed():
    run_layer_test(WeightedSumFusion, {"alpha": 0.3}, [A, B], expected_output_shape=(3, 6), check_training=False)
    out = WeightedSumFusion(alpha=0.3)([A, B])
    np.testing.assert_allclose(out, 0.3 * A + 0.7 * B, rtol=1e-6)


def test_weighted_sum_learned_starts_equal_and_trains():
    run_layer_test(WeightedSumFusion, {"learned": True}, [A, B], expected_output_shape=(3, 6))
    layer = WeightedSumFusion(learned=True)
    np.testing.assert_allclose(layer([A, B]), 0.5 * (A + B), rtol=1e-6)


def test_weighted_sum_rejects_bad_alpha_and_shapes():
    with pytest.raises(ValueError, match="alpha=1.5"):
        WeightedSumFusion(alpha=1.5)
    with pytest.raises(ValueError, match="one shape"):
        WeightedSumFusion()([A, B[:, :4]])


def test_gated_fusion():
    run_layer_test(GatedFusion, {"units": 4}, [A, B[:, :5]], expected_output_shape=(3, 4))
    with pytest.raises(ValueError, match="units=0"):
        GatedFusion(0)


def test_film_is_identity_at_init_and_trains():
    run_layer_test(FiLM, {}, [MAP, A], expected_output_shape=MAP.shape)
    np.testing.assert_allclose(FiLM()([MAP, A]), MAP, rtol=1e-6)


def test_late_fusion_averages():
    run_layer_test(LateFusion, {}, [A, B], expected_output_shape=(3, 6), check_training=False)
    np.testing.assert_allclose(LateFusion()([A, B]), (A + B) / 2, rtol=1e-6)


def test_cross_modal_attention():
    run_layer_test(
        CrossModalAttention, {"num_heads": 2, "key_dim": 4, "dropout": 0.0}, [SEQ, POSITIONS], expected_output_shape=SEQ.shape
    )
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
    run_layer_test(MaskedGlobalAveragePooling1D, {}, SEQ, expected_output_shape=(3, 8), check_training=False)


def test_position_encoding_has_no_weights_and_depends_on_position():
    run_layer_test(SinusoidalPositionEncoding, {"max_wavelength": 100.0}, SEQ, expected_output_shape=SEQ.shape,
                   check_training=False)
    out = np.asarray(SinusoidalPositionEncoding()(np.zeros((1, 5, 8), "float32")))
    assert not np.allclose(out[0, 0], out[0, 1])


def test_transformer_block_padding_does_not_leak():
    run_layer_test(TransformerEncoderBlock, {"num_heads": 2, "ff_dim": 16, "dropout": 0.0}, SEQ,
                   expected_output_shape=SEQ.shape)
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
