"""The contrastive head and loss: values against NumPy, duplicates, the temperature's init and clamp."""

import math

import keras
import numpy as np
import pytest

from zoo.layers import ContrastiveHead, ContrastiveLoss
from zoo.testing import run_layer_test


def _log_softmax(x, axis):
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def _reference(image, text, scale, bias, groups, kind):
    """CLIP / SigLIP written out pair by pair; pairs with the same group are positives."""
    u = image / np.linalg.norm(image, axis=1, keepdims=True)
    v = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = scale * u @ v.T
    n = len(groups)
    same = np.array([[groups[i] == groups[j] for j in range(n)] for i in range(n)], float)
    if kind == "sigmoid":
        z = 2 * same - 1
        return sum(math.log1p(math.exp(-z[i, j] * (logits[i, j] + bias))) for i in range(n) for j in range(n)) / n
    i2t = _log_softmax(logits, 1)
    t2i = _log_softmax(logits, 0)
    total = 0.0
    for i in range(n):
        positives = [j for j in range(n) if same[i, j]]
        total += -sum(i2t[i, j] for j in positives) / len(positives) / 2
        total += -sum(t2i[j, i] for j in positives) / len(positives) / 2
    return total / n


def _packed(image, text, scale, bias):
    u = image / np.linalg.norm(image, axis=1, keepdims=True)
    v = text / np.linalg.norm(text, axis=1, keepdims=True)
    ones = np.ones((len(u), 1))
    return np.concatenate([u, v, scale * ones, bias * ones], axis=1).astype("float32")


@pytest.mark.parametrize("kind", ["infonce", "sigmoid"])
def test_loss_matches_numpy_with_duplicate_captions(kind):
    rng = np.random.default_rng(0)
    image, text = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    # Examples 0 and 3 share a caption, as do 1 and 4.
    captions = np.array([[4, 5, 0], [6, 0, 0], [7, 8, 9], [4, 5, 0], [6, 0, 0]], "int32")
    groups = [tuple(row) for row in captions]
    loss = ContrastiveLoss(kind=kind)
    actual = float(loss(captions, _packed(image, text, 7.0, -2.0)))
    np.testing.assert_allclose(actual, _reference(image, text, 7.0, -2.0, groups, kind), rtol=1e-5)
    # The same loss with all-distinct targets is a different number (duplicates matter).
    distinct = float(loss(np.arange(5), _packed(image, text, 7.0, -2.0)))
    np.testing.assert_allclose(distinct, _reference(image, text, 7.0, -2.0, list(range(5)), kind), rtol=1e-5)
    assert abs(distinct - actual) > 1e-3


def test_class_labels_as_targets():
    rng = np.random.default_rng(1)
    image, text = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    labels = np.array([0, 1, 0, 2, 1, 0])
    actual = float(ContrastiveLoss(positives="class")(labels, _packed(image, text, 3.0, 0.0)))
    np.testing.assert_allclose(actual, _reference(image, text, 3.0, 0.0, labels.tolist(), "infonce"), rtol=1e-5)


def test_head_initialises_and_clamps_the_temperature():
    inputs = [np.ones((2, 4), "float32"), np.ones((2, 4), "float32")]
    clip = ContrastiveHead(loss="infonce")
    out = np.asarray(clip(inputs))
    np.testing.assert_allclose(out[:, 8], 1 / 0.07, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out[:, :4], axis=1), 1.0, rtol=1e-5)
    siglip = np.asarray(ContrastiveHead(loss="sigmoid")(inputs))
    np.testing.assert_allclose(siglip[0, 8:], [10.0, -10.0], rtol=1e-5)
    # An optimizer step that would push the scale past 100 is clamped back (CLIP's clamp).
    optimizer = keras.optimizers.SGD(learning_rate=1000.0)
    optimizer.apply([keras.ops.convert_to_tensor(-1.0)], [clip.log_logit_scale])
    assert float(clip.log_logit_scale.numpy()) == pytest.approx(math.log(100.0))
    clip.log_logit_scale.assign(9.0)  # set around the constraint: the forward pass clamps too
    assert float(np.asarray(clip(inputs))[0, 8]) == pytest.approx(100.0, rel=1e-5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kind='clip'"):
        ContrastiveLoss(kind="clip")
    with pytest.raises(ValueError, match="positives='digit'"):
        ContrastiveHead(positives="digit")
    with pytest.raises(ValueError, match="max_logit_scale=5"):
        ContrastiveHead(max_logit_scale=5.0)


def test_layer_contract():
    # No mixed-precision check: the head computes and outputs float32 on purpose
    # (the logits' scale of up to 100 would overflow float16 softmax inputs).
    rng = np.random.default_rng(0)
    run_layer_test(ContrastiveHead, {"loss": "sigmoid", "max_logit_scale": 50.0},
                   [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")],
                   expected_output_shape=(3, 10), expected_num_trainable_weights=2, check_mixed_precision=False)


def test_serialization_round_trip():
    loss = keras.losses.deserialize(keras.losses.serialize(ContrastiveLoss(kind="sigmoid", positives="class")))
    assert isinstance(loss, ContrastiveLoss) and (loss.kind, loss.positives) == ("sigmoid", "class")
