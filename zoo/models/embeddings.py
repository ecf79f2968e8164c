"""Using a dual encoder's embeddings: encode, zero-shot classify, retrieve, probe.

Embeddings are the towers' projections, L2-normalised as the contrastive head
normalises them, so a dot product is the cosine similarity the model was
trained on. Everything here is NumPy plus Keras sub-models, so it runs on any
backend; tokenizing prompts (`zoo.data.Tokenizer`) is the caller's step.

>>> images = zoo.models.embed_images(model, x_test)           # [N, D], unit rows
>>> classes = zoo.models.class_embeddings(model, prompt_ids)  # one [P, T] id array per class
>>> predicted = zoo.models.zero_shot_classify(images, classes)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from zoo.core import keys

__all__ = ["embed_images", "embed_texts", "class_embeddings", "zero_shot_classify", "linear_probe"]


def _tower(model: keras.Model, key: str, layer: str) -> keras.Model:
    try:
        output = model.get_layer(layer).output
    except ValueError as e:
        raise ValueError(
            f"Model {model.name!r} has no layer {layer!r}: expected a dual encoder (zoo.list_models('*_dual_encoder'))."
        ) from e
    return keras.Model(model.input[key], output)


def _encode(tower: keras.Model, data: np.ndarray, batch_size: int) -> np.ndarray:
    out = np.asarray(tower.predict(data, batch_size=batch_size, verbose=0), dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def embed_images(model: keras.Model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Unit-length image embeddings.

    Args:
        model: a dual encoder (`*_dual_encoder`).
        images: float32 [N, H, W, C] in [0, 1].
        batch_size: examples per forward pass.

    Returns:
        float32 [N, projection_dim], rows of length 1.

    Raises:
        ValueError: for a model without an `image_projection` layer.
    """
    return _encode(_tower(model, keys.IMAGE, "image_projection"), images, batch_size)


def embed_texts(model: keras.Model, token_ids: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Unit-length text embeddings of token ids (0 = padding); see `embed_images`."""
    return _encode(_tower(model, keys.TOKEN_IDS, "text_projection"), np.asarray(token_ids, "int32"), batch_size)


def class_embeddings(model: keras.Model, prompts: Sequence[np.ndarray], batch_size: int = 512) -> np.ndarray:
    """One embedding per class: the normalised mean of its prompts' embeddings (CLIP's prompt ensembling).

    Args:
        model: a dual encoder.
        prompts: per class, int [P, T] token ids of its prompts (P >= 1).

    Returns:
        float32 [num_classes, projection_dim], unit rows.

    Raises:
        ValueError: for a class without prompts.
    """
    for index, ids in enumerate(prompts):
        if len(ids) == 0:
            raise ValueError(f"Class {index} has no prompts; expected at least one tokenized prompt per class.")
    # One forward pass over all prompts (one traced function), then the mean per class.
    embedded = embed_texts(model, np.concatenate([np.asarray(ids) for ids in prompts]), batch_size)
    bounds = np.cumsum([0, *(len(ids) for ids in prompts)])
    rows = np.stack([embedded[bounds[i] : bounds[i + 1]].mean(axis=0) for i in range(len(prompts))])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def zero_shot_classify(image_embeddings: np.ndarray, class_text_embeddings: np.ndarray) -> np.ndarray:
    """The class whose text embedding is most similar to each image: int [N]."""
    return np.argmax(image_embeddings @ class_text_embeddings.T, axis=1)


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                 *, num_classes: int, epochs: int = 30, batch_size: int = 256, seed: int = 0) -> np.ndarray:
    """A logistic-regression probe on frozen features; returns its test predictions.

    The features are standardised with the training statistics, then a
    softmax layer is trained with Adam (the usual linear-probe protocol,
    without the frozen encoder in the loop).

    Args:
        train_features, train_labels: float [N, D] and int [N].
        test_features: float [M, D].
        num_classes: number of classes.
        epochs, batch_size, seed: the probe's training.

    Returns:
        int [M] predicted classes.
    """
    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    keras.utils.set_random_seed(seed)
    probe = keras.Sequential([keras.Input((train_features.shape[1],)), keras.layers.Dense(num_classes)])
    probe.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    probe.fit((train_features - mean) / std, train_labels, epochs=epochs, batch_size=batch_size, verbose=0)
    return np.argmax(probe.predict((test_features - mean) / std, batch_size=4096, verbose=0), axis=1)
