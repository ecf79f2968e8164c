"""The layers that adapt pretrained backbones: image adapter, padding-masked sequence, last-token pooling."""

import numpy as np
import pytest

from zoo.layers import (
    BackboneImageAdapter,
    LastTokenPooling,
    MaskedGlobalAveragePooling1D,
    PaddingMaskedSequence,
)
from zoo.testing import run_layer_test

rng = np.random.default_rng(0)
GRAY = rng.uniform(size=(2, 28, 28, 1)).astype("float32")
SEQ = rng.normal(size=(2, 5, 4)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")


def test_image_adapter_contract():
    run_layer_test(BackboneImageAdapter, {"height": 32, "width": 32, "channels": 3, "mode": "caffe"}, GRAY,
                   expected_output_shape=(2, 32, 32, 3), expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0, check_training=False,
                   # float16 resolves 0-255 pixel values to about 0.1.
                   mixed_precision_atol=0.3)


def test_sequence_mask_contract():
    run_layer_test(PaddingMaskedSequence, {}, [SEQ, MASK], expected_output_shape=SEQ.shape,
                   input_dtypes=["float32", "int32"], expected_num_trainable_weights=0, check_training=False,
                   check_mixed_precision=False)


def test_last_token_pooling_contract():
    run_layer_test(LastTokenPooling, {}, [SEQ, MASK * 7], expected_output_shape=(2, 4),
                   input_dtypes=["float32", "int32"], expected_num_trainable_weights=0, check_training=False)


def test_last_token_pooling_picks_the_last_real_token():
    ids = np.array([[9, 3, 5, 0, 0], [4, 4, 4, 4, 4], [0, 0, 0, 0, 0]], "int32")
    sequence = rng.normal(size=(3, 5, 4)).astype("float32")
    out = np.asarray(LastTokenPooling()([sequence, ids]))
    # CLIP's rule (the largest id: its end-of-text token) would pick position 0 of the first text.
    np.testing.assert_array_equal(out, sequence[[0, 1, 2], [2, 4, 0]])
    with pytest.raises(ValueError, match=r"\[sequence \[B, T, D\], token_ids \[B, T\]\]"):
        LastTokenPooling()([sequence, ids[:, :, None]])


@pytest.mark.parametrize(
    "mode, expected",
    [
        # caffe: BGR on 0-255 minus the ImageNet mean (keras.applications.resnet50.preprocess_input).
        ("caffe", [0.5 * 255 - 103.939, 0.5 * 255 - 116.779, 0.5 * 255 - 123.68]),
        ("tf", [0.0, 0.0, 0.0]),
        ("torch", [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]),
        ("pixels", [127.5, 127.5, 127.5]),
        # clip: OpenAI CLIP's mean and std on 0..1.
        ("clip", [(0.5 - 0.48145466) / 0.26862954, (0.5 - 0.4578275) / 0.26130258, (0.5 - 0.40821073) / 0.27577711]),
    ],
)
def test_image_adapter_matches_each_backbones_preprocessing(mode, expected):
    out = np.asarray(BackboneImageAdapter(8, 8, 3, mode)(np.full((1, 4, 4, 1), 0.5, "float32")))
    assert out.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(out[0, 3, 3], expected, rtol=1e-5, atol=1e-5)


def test_image_adapter_agrees_with_keras_applications_on_rgb():
    import keras

    rgb = rng.uniform(size=(1, 32, 32, 3)).astype("float32")
    ours = np.asarray(BackboneImageAdapter(32, 32, 3, "caffe")(rgb))
    theirs = keras.applications.resnet50.preprocess_input(rgb * 255.0)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_image_adapter_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode='bgr'"):
        BackboneImageAdapter(32, 32, 3, "bgr")
    with pytest.raises(ValueError, match="height=0"):
        BackboneImageAdapter(0, 32)
    with pytest.raises(ValueError, match=r"\[B, H, W, 1 or 3\]"):
        BackboneImageAdapter(32, 32)(np.zeros((1, 4, 4, 2), "float32"))


def test_masked_sequence_makes_pooling_skip_padding():
    import keras

    sequence = keras.Input((5, 4))
    mask = keras.Input((5,), dtype="int32")
    pooled = MaskedGlobalAveragePooling1D()(PaddingMaskedSequence()([sequence, mask]))
    out = np.asarray(keras.Model([sequence, mask], pooled)([SEQ, MASK]))
    np.testing.assert_allclose(out[0], SEQ[0, :3].mean(0), rtol=1e-5)
    np.testing.assert_allclose(out[1], SEQ[1].mean(0), rtol=1e-5)
