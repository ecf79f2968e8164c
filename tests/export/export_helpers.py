"""Tiny models, a vocabulary and reference outputs shared by the export tests."""

import numpy as np
import tensorflow as tf

import zoo
from zoo.data.text import Tokenizer

# Small enough that building and exporting takes about a second.
TINY = dict(
    image_shape=(12, 12, 1),
    conv_filters=(4, 8),
    image_units=8,
    vocab_size=16,
    max_length=6,
    embed_dim=8,
    rnn_units=(8,),
    head_units=8,
    num_classes=3,
)
VOCABULARY = ["", "[UNK]", "is", "it", "even", "odd", "the", "digit", "a", "one", "two", "three", "what", "this", "zero", "big"]
CLASS_NAMES = ["zero", "one", "two"]
TEXTS = [b"is it even?", b"", b"\xff\xfe not valid utf-8", b"WHAT, digit is THIS?", b"completely unknown words here"]


def build_tiny(name="cnn_lstm_concat", **overrides):
    """Builds a registered model with tiny dimensions (only the keys it takes)."""
    from zoo.registry import get_entry

    defaults = get_entry(name).defaults
    kwargs = {k: v for k, v in TINY.items() if k in defaults}
    kwargs.update(overrides)
    return zoo.build(name, **kwargs)


def images(batch, shape=(12, 12, 1), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape), dtype=np.uint8)


def png_file(path, image):
    """Writes one uint8 image [H, W, C] as a PNG file at `path` and returns the path."""
    path.write_bytes(tf.io.encode_png(image).numpy())
    return path


def texts(batch):
    return np.array([TEXTS[i % len(TEXTS)] for i in range(batch)], dtype=object)


def reference(model, image=None, text=None, max_length=6):
    """The in-memory model's output on raw inputs, preprocessed as the export does."""
    feeds = {}
    if image is not None:
        feeds["image"] = tf.constant(image.astype(np.float32) / np.float32(255.0))
    if text is not None:
        feeds["token_ids"] = Tokenizer(VOCABULARY, max_length)(tf.constant(list(text), tf.string))
    out = model({t.name: feeds[t.name] for t in model.inputs}, training=False)
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    return np.asarray(out)
