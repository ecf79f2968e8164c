"""Adapts the zoo's images to what a pretrained image backbone expects, inside the graph."""

import keras
from keras import ops

# Per-channel constants of the preprocessing conventions of `keras.applications`
# (`imagenet_utils.preprocess_input`) and of KerasHub's ImageNet image converters.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
# OpenAI CLIP's own image statistics (its `clip.py` preprocessing), which KerasHub's CLIP presets keep.
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

MODES = ("caffe", "tf", "torch", "pixels", "unit", "clip")


@keras.saving.register_keras_serializable(package="zoo")
class BackboneImageAdapter(keras.layers.Layer):
    """Resizes, repeats channels and normalises [0, 1] images for a pretrained backbone.

    Input `[B, H, W, C]` float pixels in [0, 1] (the zoo's `image` input);
    output `[B, height, width, channels]` in the value range the backbone was
    trained on. A grayscale image is repeated to three channels; an image of
    another size is resized (bilinear) to `(height, width)`.

    Args:
        height, width: the backbone's input size.
        channels: the backbone's channels (1 or 3).
        mode: the backbone's own preprocessing:
            `"caffe"` (keras.applications ResNet, VGG: BGR, ImageNet mean
            subtracted on 0-255), `"tf"` (MobileNetV2, ResNetV2: -1..1),
            `"torch"` (DenseNet, KerasHub ImageNet presets: ImageNet mean and
            std on 0..1), `"pixels"` (0-255, for models that rescale
            themselves such as EfficientNet), `"clip"` (CLIP's mean and std
            on 0..1) or `"unit"` (unchanged 0..1).

    Example:

    >>> adapted = BackboneImageAdapter(32, 32, 3, "caffe")(image)  # [B, 28, 28, 1] -> [B, 32, 32, 3]
    """

    def __init__(self, height: int, width: int, channels: int = 3, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        for key, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BackboneImageAdapter: {key}={value!r}; expected a positive int.")
        if channels not in (1, 3):
            raise ValueError(f"BackboneImageAdapter: channels={channels!r}; expected 1 or 3.")
        if mode not in MODES:
            raise ValueError(f"BackboneImageAdapter: mode={mode!r}; expected one of {MODES}.")
        self.height = height
        self.width = width
        self.channels = channels
        self.mode = mode

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] not in (1, self.channels):
            raise ValueError(
                f"BackboneImageAdapter expects [B, H, W, 1 or {self.channels}] images; got shape {input_shape}."
            )

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if x.shape[-1] != self.channels:
            x = ops.repeat(x, self.channels, axis=-1)
        if tuple(x.shape[1:3]) != (self.height, self.width):
            x = ops.image.resize(x, (self.height, self.width), interpolation="bilinear")
        return self._normalise(x)

    def _normalise(self, x):
        if self.mode == "unit":
            return x
        if self.mode == "pixels":
            return x * 255.0
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode in ("torch", "clip"):
            mean, std = (_TORCH_MEAN, _TORCH_STD) if self.mode == "torch" else (_CLIP_MEAN, _CLIP_STD)
            mean = ops.convert_to_tensor(mean[: self.channels], self.compute_dtype)
            std = ops.convert_to_tensor(std[: self.channels], self.compute_dtype)
            return (x - mean) / std
        # caffe: the backbone was trained on BGR 0-255 images minus the ImageNet mean.
        if self.channels == 3:
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR[: self.channels], self.compute_dtype)
        return x * 255.0 - mean

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.channels)

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: 0; resizing and scaling are element-wise (see zoo.layers.cost)."""
        return 0

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "mode": self.mode,
        }
