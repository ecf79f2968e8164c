"""The contrastive head of a dual encoder and its loss (CLIP's InfoNCE, SigLIP's sigmoid loss).

`ContrastiveHead` L2-normalises the two towers' projections and holds the
learnable temperature; its one output packs, per example,
`[image embedding (D), text embedding (D), logit scale, logit bias]`, so that
a dual encoder is a plain single-output Keras model that `compile`/`fit` and
`.keras` files handle like any other. `ContrastiveLoss` reads that layout.

The logit scale is stored as its logarithm and clamped to [0, log(100)]
after every optimizer step (a variable constraint) and in the forward pass,
as in CLIP (Radford et al., 2021); InfoNCE starts it at 1/0.07 (CLIP's
initialisation), the sigmoid loss at 10 with a bias of -10 (SigLIP,
Zhai et al., 2023).
"""

from __future__ import annotations

import math

import keras
from keras import ops

LOSSES = ("infonce", "sigmoid")
POSITIVES = ("caption", "class")
# CLIP: temperature 0.07 at the start, logit scale at most 100.
CLIP_INIT_SCALE = 1.0 / 0.07
MAX_LOGIT_SCALE = 100.0
# SigLIP: t' = log 10, b = -10, so the loss starts near its optimum for mostly negative pairs.
SIGLIP_INIT_SCALE, SIGLIP_INIT_BIAS = 10.0, -10.0


def split_embeddings(packed):
    """Splits a `ContrastiveHead` output into (image [B, D], text [B, D], scale [], bias []).

    The scale and bias are averaged over the rows (every row holds the same
    value), so each row passes them the same gradient.
    """
    dim = (packed.shape[-1] - 2) // 2
    return (packed[:, :dim], packed[:, dim : 2 * dim], ops.mean(packed[:, 2 * dim]), ops.mean(packed[:, 2 * dim + 1]))


@keras.saving.register_keras_serializable(package="zoo")
class ClipValue(keras.constraints.Constraint):
    """Keeps a variable in [min_value, max_value] after each optimizer step (CLIP's clamp)."""

    def __init__(self, min_value: float, max_value: float):
        self.min_value, self.max_value = float(min_value), float(max_value)

    def __call__(self, w):
        return ops.clip(w, self.min_value, self.max_value)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value}


@keras.saving.register_keras_serializable(package="zoo")
class ContrastiveHead(keras.layers.Layer):
    """Normalised image and text embeddings with a learnable temperature, packed in one tensor.

    Args:
        loss: "infonce" (CLIP's initialisation: scale 1/0.07, bias 0) or
            "sigmoid" (SigLIP's: scale 10, bias -10); `ContrastiveLoss` of the
            same kind trains it (`loss_config`).
        positives: which pairs the loss treats as matching: "caption" (same
            text) or "class" (same label).
        max_logit_scale: the clamp of the logit scale (CLIP: 100).

    Call arguments:
        inputs: [image features [B, D], text features [B, D]].

    Returns:
        [B, 2D + 2]: image embedding, text embedding (unit length), logit
        scale and logit bias repeated per row.
    """

    def __init__(self, loss: str = "infonce", positives: str = "caption", max_logit_scale: float = MAX_LOGIT_SCALE,
                 **kwargs):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"ContrastiveHead: loss={loss!r}; expected one of {list(LOSSES)}.")
        if positives not in POSITIVES:
            raise ValueError(f"ContrastiveHead: positives={positives!r}; expected one of {list(POSITIVES)}.")
        init_scale = CLIP_INIT_SCALE if loss == "infonce" else SIGLIP_INIT_SCALE
        if not max_logit_scale >= init_scale:
            raise ValueError(
                f"ContrastiveHead: max_logit_scale={max_logit_scale!r}; expected at least the initial scale {init_scale:.4g}."
            )
        self.loss = loss
        self.positives = positives
        self.max_logit_scale = float(max_logit_scale)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[0][-1] != input_shape[1][-1]:
            raise ValueError(f"ContrastiveHead takes two inputs of one width [B, D]; got shapes {input_shape}.")
        init_scale, init_bias = (CLIP_INIT_SCALE, 0.0) if self.loss == "infonce" else (SIGLIP_INIT_SCALE, SIGLIP_INIT_BIAS)
        self.log_logit_scale = self.add_weight(
            shape=(), name="log_logit_scale", initializer=keras.initializers.Constant(math.log(init_scale)),
            constraint=ClipValue(0.0, math.log(self.max_logit_scale)),
        )
        self.logit_bias = self.add_weight(shape=(), name="logit_bias", initializer=keras.initializers.Constant(init_bias))

    def logit_scale(self):
        """The clamped logit scale exp(log scale), a float32 scalar."""
        # float32 even under a mixed policy: the scale multiplies float32 embeddings.
        log_scale = ops.cast(self.log_logit_scale, "float32")
        return ops.exp(ops.clip(log_scale, 0.0, math.log(self.max_logit_scale)))

    def call(self, inputs):
        image, text = inputs
        image = _l2_normalize(ops.cast(image, "float32"))
        text = _l2_normalize(ops.cast(text, "float32"))
        ones = ops.ones_like(image[:, :1])
        return ops.concatenate(
            [image, text, ones * self.logit_scale(), ones * ops.cast(self.logit_bias, "float32")], axis=-1
        )

    def loss_config(self) -> dict:
        """The arguments of the `ContrastiveLoss` that trains this head."""
        return {"kind": self.loss, "positives": self.positives}

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 2 * input_shape[0][-1] + 2)

    def compute_output_spec(self, inputs):
        image = inputs[0]
        return keras.KerasTensor((image.shape[0], 2 * image.shape[-1] + 2), dtype="float32")

    def count_macs(self, input_shape) -> int:
        """Multiply-adds per example: normalisation is element-wise, not counted (see zoo.layers.cost)."""
        return 0

    def get_config(self):
        return {**super().get_config(), "loss": self.loss, "positives": self.positives,
                "max_logit_scale": self.max_logit_scale}


def _l2_normalize(x):
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))


@keras.saving.register_keras_serializable(package="zoo")
class ContrastiveLoss(keras.losses.Loss):
    """Symmetric InfoNCE (CLIP) or pairwise sigmoid (SigLIP) loss over a batch of pairs.

    `y_pred` is a `ContrastiveHead` output; `y_true` says which pairs match:
    examples i and j are a positive pair when their rows of `y_true` are
    equal. Pass the token ids as `y_true` to treat pairs sharing a caption as
    positives, or the class labels ([B] or [B, 1]) for same-class positives.
    With distinct rows this is CLIP's one-hot InfoNCE; with duplicates each
    row's target spreads evenly over its positives, so identical captions are
    not pushed apart.

    InfoNCE: logits = s·UVᵀ; the per-example loss is the mean of the
    image→text and text→image cross-entropies against those targets.
    Sigmoid: logits = s·UVᵀ + b; the per-example loss is
    Σⱼ −log σ(zᵢⱼ·logitᵢⱼ), zᵢⱼ = +1 for positives and −1 otherwise, so the
    batch mean is SigLIP's sum over pairs divided by the batch size.

    Under `tf.distribute` the batch must be the global one: `zoo.train`
    gathers both arguments across replicas before calling the loss.

    Args:
        kind: "infonce" or "sigmoid".
        positives: "caption" or "class": what `zoo.train` passes as `y_true`
            (the token ids, or the labels).
    """

    def __init__(self, kind: str = "infonce", positives: str = "caption", name: str = "contrastive_loss",
                 reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if kind not in LOSSES:
            raise ValueError(f"ContrastiveLoss: kind={kind!r}; expected one of {list(LOSSES)}.")
        if positives not in POSITIVES:
            raise ValueError(f"ContrastiveLoss: positives={positives!r}; expected one of {list(POSITIVES)}.")
        self.kind = kind
        self.positives = positives

    def call(self, y_true, y_pred):
        image, text, scale, bias = split_embeddings(y_pred)
        positive = positive_pairs(y_true)
        logits = scale * ops.matmul(image, ops.transpose(text))
        if self.kind == "sigmoid":
            signs = 2.0 * positive - 1.0
            # -log sigmoid(x) = softplus(-x), stable for large |x|.
            return ops.sum(ops.softplus(-signs * (logits + bias)), axis=1)
        targets = positive / ops.sum(positive, axis=1, keepdims=True)
        image_to_text = -ops.sum(targets * ops.log_softmax(logits, axis=1), axis=1)
        text_to_image = -ops.sum(targets * ops.log_softmax(logits, axis=0), axis=0)
        return 0.5 * (image_to_text + text_to_image)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "positives": self.positives}


def positive_pairs(y_true):
    """[B, B] float mask: 1 where rows i and j of `y_true` ([B] or [B, K]) are equal."""
    if len(y_true.shape) == 1:
        y_true = ops.expand_dims(y_true, -1)
    equal = ops.all(ops.equal(ops.expand_dims(y_true, 1), ops.expand_dims(y_true, 0)), axis=-1)
    return ops.cast(equal, "float32")
