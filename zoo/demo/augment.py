"""Random small shifts and rotations of image batches, as tf.data graph ops.

Each image of a batch gets its own rotation about the image centre and its
own translation, applied in one `ImageProjectiveTransformV3` op (bilinear,
zero fill). The randomness is stateless: it comes from an int64 seed per
batch, so a seeded pipeline gives the same augmented batches on every run.

>>> ds = tf.data.Dataset.zip((batches, tf.data.Dataset.random(seed=0)))
>>> ds = ds.map(lambda element, seed: augment_batch(element, seed, max_shift=2.0, max_rotation=10.0))
"""

from __future__ import annotations

import math

import tensorflow as tf

from zoo.core import keys

__all__ = ["random_affine", "augment_batch"]


def _check_range(name: str, value, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= limit:
        raise ValueError(f"{name}={value!r}: expected a number in [0, {limit}].")
    return float(value)


def random_affine(images: tf.Tensor, seed: tf.Tensor, *, max_shift: float, max_rotation: float) -> tf.Tensor:
    """Rotates and shifts each image of a batch by its own random amounts.

    Args:
        images: float [B, H, W, C].
        seed: int64 scalar; the same seed gives the same transforms.
        max_shift: largest shift in pixels along each axis (uniform in
            [-max_shift, max_shift]); at most a quarter of the image side.
        max_rotation: largest rotation in degrees (uniform in
            [-max_rotation, max_rotation]); at most 45.

    Returns:
        The transformed images, same shape and dtype; pixels shifted in from
        outside the image are 0.

    Raises:
        ValueError: for a range outside its limits or images not of rank 4.
    """
    if images.shape.rank != 4:
        raise ValueError(f"random_affine expects images [B, H, W, C]; got shape {images.shape}.")
    height, width = images.shape[1], images.shape[2]
    max_shift = _check_range("max_shift", max_shift, min(height, width) / 4)
    max_rotation = _check_range("max_rotation", max_rotation, 45.0)
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]), 3)
    angle = tf.random.stateless_uniform([batch], seeds[0], -1.0, 1.0) * (max_rotation * math.pi / 180.0)
    shift_x = tf.random.stateless_uniform([batch], seeds[1], -max_shift, max_shift)
    shift_y = tf.random.stateless_uniform([batch], seeds[2], -max_shift, max_shift)
    # The op maps each output pixel (x, y) to the input point it samples:
    # rotate about the centre, then undo the shift.
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    zeros = tf.zeros_like(angle)
    transforms = tf.stack(
        [
            cos,
            -sin,
            cx - cos * cx + sin * cy - shift_x,
            sin,
            cos,
            cy - sin * cx - cos * cy - shift_y,
            zeros,
            zeros,
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def augment_batch(element, seed, *, max_shift: float, max_rotation: float):
    """Applies `random_affine` to the `image` feature of a `(features, label)` batch.

    Args:
        element: `(features, label)` as `zoo.data.pipeline.make_dataset` yields.
        seed: int64 scalar seed for this batch.
        max_shift, max_rotation: see `random_affine`.

    Returns:
        `(features, label)` with the images transformed; other features untouched.

    Raises:
        ValueError: if the features have no `image`.
    """
    features, label = element
    if keys.IMAGE not in features:
        raise ValueError(f"augment_batch needs an {keys.IMAGE!r} feature; got {sorted(features)}.")
    features = dict(features)
    images = features[keys.IMAGE]
    transformed = random_affine(images, seed, max_shift=max_shift, max_rotation=max_rotation)
    # The transform keeps the size; saying so keeps the image size static for the model,
    # whose fused first convolution needs it (zoo.layers.conv_pool).
    features[keys.IMAGE] = tf.ensure_shape(transformed, images.shape)
    return features, label
