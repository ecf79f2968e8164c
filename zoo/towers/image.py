"""Image towers: functions from an image tensor to a feature map or vector.

Every layer is named with the tower's prefix (`image_conv1`, `image_dense`).
"""

from collections.abc import Sequence

import keras


def cnn_feature_map(
    images,
    *,
    filters: Sequence[int] = (32, 64),
    kernel_size: int = 3,
    pool_size: int = 2,
    batch_norm: bool = False,
    prefix: str = "image",
):
    """The seed CNN's convolutional part: [Conv2D(relu) -> MaxPool] per entry of `filters`.

    With the defaults on 28x28x1 input this is Conv2D(32,3) -> MaxPool(2) ->
    Conv2D(64,3) -> MaxPool(2), a 5x5x64 map. `batch_norm` puts a
    BatchNormalization between each convolution and its ReLU.

    Returns:
        The feature map [batch, H', W', filters[-1]].
    """
    x = images
    for i, width in enumerate(filters, start=1):
        if batch_norm:
            x = keras.layers.Conv2D(width, kernel_size, use_bias=False, name=f"{prefix}_conv{i}")(x)
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn{i}")(x)
            x = keras.layers.ReLU(name=f"{prefix}_relu{i}")(x)
        else:
            x = keras.layers.Conv2D(width, kernel_size, activation="relu", name=f"{prefix}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(pool_size, name=f"{prefix}_pool{i}")(x)
    return x


def flatten_features(feature_map, *, units: int = 128, dropout: float = 0.0, prefix: str = "image"):
    """The seed CNN's top: Flatten -> (Dropout) -> Dense(units, relu)."""
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(feature_map)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout")(x)
    return keras.layers.Dense(units, activation="relu", name=f"{prefix}_dense")(x)


def feature_map_positions(feature_map, *, prefix: str = "image"):
    """Reshapes [batch, H, W, C] to [batch, H*W, C]: one attention position per cell."""
    _, height, width, channels = feature_map.shape
    return keras.layers.Reshape((height * width, channels), name=f"{prefix}_positions")(feature_map)


def residual_feature_map(
    images, *, widths: Sequence[int] = (32, 64), blocks_per_stage: int = 1, prefix: str = "image"
):
    """A small ResNet: a 3x3 stem, then per width a stride-2 stage of basic blocks.

    Each basic block is two 3x3 BatchNorm convolutions with an identity (or 1x1
    projection) shortcut, as in He et al. (2016).

    Returns:
        The feature map after the last stage.
    """
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name=f"{prefix}_stem_conv")(images)
    x = keras.layers.BatchNormalization(name=f"{prefix}_stem_bn")(x)
    x = keras.layers.ReLU(name=f"{prefix}_stem_relu")(x)
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            name = f"{prefix}_stage{stage}_block{block}"
            strides = 2 if block == 1 else 1
            shortcut = x
            if strides != 1 or x.shape[-1] != width:
                shortcut = keras.layers.Conv2D(width, 1, strides=strides, use_bias=False, name=f"{name}_shortcut")(x)
                shortcut = keras.layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
            y = keras.layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv1")(x)
            y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
            y = keras.layers.ReLU(name=f"{name}_relu1")(y)
            y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
            y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
            x = keras.layers.Add(name=f"{name}_add")([shortcut, y])
            x = keras.layers.ReLU(name=f"{name}_out")(x)
    return x


def pooled_features(feature_map, *, units: int = 128, prefix: str = "image"):
    """Global average pooling -> Dense(units, relu)."""
    x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}_gap")(feature_map)
    return keras.layers.Dense(units, activation="relu", name=f"{prefix}_dense")(x)
