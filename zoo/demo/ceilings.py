"""Measured unimodal ceilings: a zoo model trained on one modality of mnist_text.

The analytic ceilings (`python -m zoo.data.ceilings`) need no model. For the
caption config the image-only ceiling is not analytic (degraded images are
partly readable), so `python -m zoo.demo.ceilings cnn_seed` measures it by
training the seed image model on images alone (the dataset card quotes it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from zoo.data import ceilings, pipeline
from zoo.datasets.mnist_text import generation
from zoo.registry import build
from zoo.training import data_overrides

__all__ = ["train_and_score", "main"]


def train_and_score(
    config: str,
    model_name: str = "cnn_seed",
    *,
    data_dir=None,
    epochs: int = 5,
    batch_size: int = 128,
    seed: int = 0,
) -> dict:
    """Trains a zoo model on a config's train split and scores it on test.

    The model gets only the inputs it declares (`image`, `token_ids`), so
    `cnn_seed` measures the image-only ceiling and a fusion model what both
    modalities reach together.

    Returns:
        {"test_accuracy": float, "per_degradation": {name: float}} (the latter for text configs).
    """
    import keras

    keras.utils.set_random_seed(seed)
    vocabulary = None
    if config in pipeline.TEXT_CONFIGS:
        vocabulary = pipeline.fit_vocabulary(config, data_dir=data_dir)
    overrides = data_overrides(
        model_name,
        num_classes=len(pipeline.class_names(config)),
        vocab_size=len(vocabulary) if vocabulary is not None else None,
    )
    model = build(model_name, **overrides)
    inputs = [t.name.split(":")[0] for t in model.inputs]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def own_inputs(features, label):
        return {name: features[name] for name in inputs}, label

    train = pipeline.make_dataset(config, "train", data_dir=data_dir, batch_size=batch_size, seed=seed)
    model.fit(train.map(own_inputs), epochs=epochs, verbose=2)
    # One pass pairs each prediction with its own label and id.
    test = pipeline.make_dataset(config, "test", data_dir=data_dir, batch_size=512, with_ids=True)
    predictions, labels, ids = [], [], []
    for features, label in test:
        batch = {name: features[name] for name in inputs}
        predictions.append(np.argmax(model.predict_on_batch(batch), axis=-1))
        labels.append(label.numpy())
        ids.append(features["example_id"].numpy())
    predictions, labels, ids = map(np.concatenate, (predictions, labels, ids))
    result = {"test_accuracy": float(np.mean(predictions == labels))}
    if config in pipeline.TEXT_CONFIGS:
        columns = ceilings.read_columns(config, "test", data_dir)
        by_id = dict(zip(columns["example_id"].tolist(), columns["degradation"].tolist(), strict=True))
        degradation = np.array([by_id[i] for i in ids.tolist()])
        names = generation.DEGRADATIONS
        result["per_degradation"] = {
            names[d]: float(np.mean(predictions[degradation == d] == labels[degradation == d]))
            for d in range(len(names))
            if (degradation == d).any()
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Trains each MODEL on each text config and prints its test accuracy (the card's trained rows)."""
    parser = argparse.ArgumentParser(prog="python -m zoo.demo.ceilings", description=main.__doc__)
    parser.add_argument("models", nargs="+", metavar="MODEL", help="zoo models, e.g. cnn_seed cnn_lstm_concat_seed")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS's)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=list(pipeline.TEXT_CONFIGS), choices=pipeline.TEXT_CONFIGS)
    args = parser.parse_args(argv)
    for model_name in args.models:
        for config in args.configs:
            result = train_and_score(config, model_name, data_dir=args.data_dir, epochs=args.epochs)
            summary = ", ".join(f"{k}={ceilings.format_result(v)}" for k, v in result.items())
            print(f"{config} {model_name}, {args.epochs} epochs: {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
