"""Random shifts and rotations: seeded, bounded, identity at zero, images only."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.demo.augment import augment_batch, random_affine


def _square_images(count=8):
    images = np.zeros((count, 28, 28, 1), np.float32)
    images[:, 10:18, 10:18, 0] = 1.0
    return tf.constant(images)


def _centre_of_mass(images):
    images = np.asarray(images)[..., 0]
    rows, cols = np.mgrid[0:28, 0:28]
    total = images.sum(axis=(1, 2))
    return np.stack([(images * rows).sum(axis=(1, 2)) / total, (images * cols).sum(axis=(1, 2)) / total], axis=1)


def test_same_seed_same_images_other_seed_other_images():
    images = _square_images()
    first = random_affine(images, tf.constant(7, tf.int64), max_shift=2.0, max_rotation=10.0)
    again = random_affine(images, tf.constant(7, tf.int64), max_shift=2.0, max_rotation=10.0)
    other = random_affine(images, tf.constant(8, tf.int64), max_shift=2.0, max_rotation=10.0)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.allclose(first.numpy(), other.numpy())
    # Each image of the batch gets its own transform.
    assert len({round(float(v), 4) for v in _centre_of_mass(first)[:, 0]}) > 1


def test_zero_ranges_leave_images_unchanged():
    images = _square_images()
    out = random_affine(images, tf.constant(1, tf.int64), max_shift=0.0, max_rotation=0.0)
    np.testing.assert_allclose(out.numpy(), images.numpy(), atol=1e-6)


def test_shifts_stay_within_the_range():
    images = _square_images(64)
    out = random_affine(images, tf.constant(3, tf.int64), max_shift=2.0, max_rotation=0.0)
    moved = _centre_of_mass(out) - _centre_of_mass(images)
    assert np.abs(moved).max() <= 2.0 + 1e-4
    assert np.abs(moved).max() > 1.0, "shifts use the range"


def test_rotation_about_the_centre_keeps_a_centred_blob_in_place():
    images = np.zeros((16, 28, 28, 1), np.float32)
    images[:, 11:17, 11:17, 0] = 1.0  # centred on (13.5, 13.5), the rotation centre
    out = random_affine(tf.constant(images), tf.constant(5, tf.int64), max_shift=0.0, max_rotation=30.0)
    np.testing.assert_allclose(_centre_of_mass(out), 13.5, atol=0.05)
    assert not np.allclose(out.numpy(), images), "the square turned"


def test_augment_batch_touches_only_the_image():
    features = {"image": _square_images(4), "token_ids": tf.constant([[3, 4, 0]] * 4)}
    label = tf.constant([1, 2, 3, 4])
    new_features, new_label = augment_batch((features, label), tf.constant(0, tf.int64), max_shift=2.0, max_rotation=5.0)
    np.testing.assert_array_equal(new_features["token_ids"], features["token_ids"])
    np.testing.assert_array_equal(new_label, label)
    assert new_features["image"].shape == (4, 28, 28, 1)


def test_augmented_dataset_keeps_the_static_image_size():
    # The model's fused first convolution needs it when the training step is traced.
    features = {"image": _square_images(4), "token_ids": tf.constant([[3, 4, 0]] * 4)}
    batches = tf.data.Dataset.from_tensors((features, tf.constant([1, 2, 3, 4]))).unbatch().batch(2)
    seeds = tf.data.Dataset.random(seed=0)
    augmented = tf.data.Dataset.zip((batches, seeds)).map(
        lambda element, seed: augment_batch(element, seed, max_shift=2.0, max_rotation=5.0)
    )
    assert augmented.element_spec[0]["image"].shape.as_list() == [None, 28, 28, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_shift": -1.0, "max_rotation": 0.0}, "max_shift=-1.0"),
        ({"max_shift": 8.0, "max_rotation": 0.0}, "max_shift=8.0: expected a number in \\[0, 7.0\\]"),
        ({"max_shift": 1.0, "max_rotation": 90.0}, "max_rotation=90.0"),
        ({"max_shift": True, "max_rotation": 0.0}, "max_shift=True"),
    ],
)
def test_bad_ranges_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        random_affine(_square_images(1), tf.constant(0, tf.int64), **kwargs)


def test_augment_batch_needs_an_image():
    with pytest.raises(ValueError, match="needs an 'image' feature; got \\['token_ids'\\]"):
        augment_batch(({"token_ids": tf.zeros([1, 3], tf.int32)}, tf.zeros([1])), tf.constant(0, tf.int64),
                      max_shift=1.0, max_rotation=0.0)
