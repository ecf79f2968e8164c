"""Pretrain -> fine-tune on the project's own data, offline: the transfer-learning workflow, measured.

Published weights cannot be downloaded here, so the zoo pretrains its towers
itself and saves them as local KerasHub presets, exactly as a downloaded
preset would arrive:

1. an image backbone (`resnet_tiny`) learns digits on `digits` (plain MNIST);
2. a text backbone (a small BERT over a whole-word tokenizer of the
   project's texts) learns the digit a caption names or hints at, on `caption`;
3. `bert_resnet_concat_tiny` is built from both presets (`pretrained=DIR`)
   and fine-tuned on `vqa`, towers frozen for the first half of its epochs
   and unfrozen (learning rate x `MULTIPLIER`) for the second, against the
   same model from random initialisation trained for as many epochs, with
   1%, 10% and 100% of the vqa training labels; test accuracy on the full
   vqa test split.

`python -m zoo.demo.pretrain_finetune OUT [--seeds 3] [--quick]` writes
`OUT/pretrain_finetune.json` and `.md`; rows already in the JSON are kept, so
an interrupted run continues. The README gives the measured table and time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import keras
import numpy as np

from zoo.core.atomic import atomic_write_text
from zoo.core.jsonio import read_json, write_json
from zoo.data import make_dataset, pipeline
from zoo.data.hub_text import BackboneTokenizer, word_tokenizer
from zoo.layers import BackboneImageAdapter
from zoo.towers import pretrained as hub
from zoo.training import train

__all__ = ["MODEL", "TEXT_CONFIG", "FRACTIONS", "pretrain_towers", "run_table", "markdown", "main"]

MODEL = "bert_resnet_concat_tiny"
MAX_LENGTH = 24
TEXT_CONFIG = {"num_layers": 2, "num_heads": 2, "hidden_dim": 64, "intermediate_dim": 128, "max_sequence_length": 32}
FRACTIONS = (0.01, 0.1, 1.0)
# Epochs per label fraction: fewer labels, more passes (about the same number of steps at 1% and 10%).
EPOCHS = {0.01: 8, 0.1: 4, 1.0: 2}
MULTIPLIER = 0.1
BATCH = 64
PUNCTUATION = ("?", ".", ",", "!", "'")


def _words(data_dir) -> list[str]:
    words = set()
    for config in ("caption", "vqa"):
        words.update(pipeline.fit_vocabulary(config, data_dir=data_dir)[2:])  # after padding and [UNK]
    return sorted(words | set(PUNCTUATION))


def _run_dir(out, *parts) -> str:
    return os.path.join(out, "runs", *parts)


def pretrain_towers(out: str, *, data_dir=None, quick: bool = False) -> str:
    """Pretrains the image tower on digits and the text tower on caption; saves both as presets.

    Returns:
        The preset directory (`OUT/presets`, with `image/` and `text/`), which
        `pretrained=` takes.
    """
    presets = os.path.join(out, "presets")
    if os.path.exists(os.path.join(presets, "text", "tokenizer.json")) and os.path.exists(
        os.path.join(presets, "image", "config.json")
    ):
        return presets
    split = "train[:2000]" if quick else "train"
    keras.utils.set_random_seed(0)
    image_backbone, mode = hub.image_backbone("resnet_tiny", image_size=32)

    def image_classifier():
        images = keras.Input((28, 28, 1), name="image")
        x = BackboneImageAdapter(32, 32, 3, mode, name="image_adapter")(images)
        x = keras.layers.GlobalAveragePooling2D(name="image_gap")(image_backbone(x))
        return keras.Model({"image": images}, keras.layers.Dense(10, activation="softmax", name="head_probabilities")(x))

    train(image_classifier, data="digits", out=_run_dir(out, "pretrain_image"), data_dir=data_dir, train_split=split,
          epochs=1, batch_size=BATCH, seed=0, verbose=0)
    image_backbone.save_to_preset(os.path.join(presets, "image"))

    words = _words(data_dir)
    text_backbone = hub.text_backbone("bert_tiny_en_uncased", config={**TEXT_CONFIG, "vocabulary_size": len(words) + 5})
    text_dir = os.path.join(presets, "text")
    text_backbone.save_to_preset(text_dir)
    word_tokenizer(words).save_to_preset(text_dir)
    tokenizer = BackboneTokenizer(text_dir, MAX_LENGTH)

    def text_classifier():
        inputs, pooled, _ = hub.text_tower(text_backbone, MAX_LENGTH)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head_probabilities")(pooled))

    def caption(split_name, shuffle):
        return lambda context: make_dataset("caption", split_name, data_dir=data_dir, tokenizer=tokenizer,
                                            max_length=MAX_LENGTH, batch_size=BATCH, shuffle=shuffle, seed=0)

    train(text_classifier, dataset_fn=caption(split, True), validation_fn=caption("validation[:1000]", False),
          out=_run_dir(out, "pretrain_text"), epochs=1, batch_size=BATCH, seed=0, verbose=0, learning_rate=3e-4)
    text_backbone.save_to_preset(text_dir)
    return presets


def _accuracy(model, data_dir, tokenizer, split: str) -> float:
    test = make_dataset("vqa", split, data_dir=data_dir, tokenizer=tokenizer, max_length=MAX_LENGTH, batch_size=256)
    correct = total = 0
    for features, labels in test:
        feeds = {t.name: features[t.name] for t in model.inputs}
        predicted = np.argmax(np.asarray(model(feeds, training=False)), axis=-1)
        correct += int((predicted == labels.numpy()).sum())
        total += len(predicted)
    return correct / total


def _one_row(out, presets, start, fraction, seed, data_dir, quick) -> dict:
    """Trains one (start, fraction, seed) cell through zoo.train and evaluates it on test."""
    count = pipeline.num_examples("vqa", "train", data_dir=data_dir)
    examples = max(BATCH, int(round(count * fraction))) if not quick else max(BATCH, int(400 * fraction) + BATCH)
    epochs = EPOCHS[fraction]
    overrides = {"max_length": MAX_LENGTH, "num_classes": 12}
    options = {}
    if start == "pretrained":
        overrides["pretrained"] = presets
        options = {"freeze": ("text_backbone", "image_backbone"), "unfreeze_epoch": epochs // 2,
                   "backbone_lr_multiplier": MULTIPLIER}
    else:
        overrides["text_config"] = {**TEXT_CONFIG, "vocabulary_size": len(_words(data_dir)) + 5}
        overrides["text_pretrained"] = False
    tokenizer = BackboneTokenizer(os.path.join(presets, "text"), MAX_LENGTH)
    data = lambda split, shuffle: lambda context: make_dataset(  # noqa: E731
        "vqa", split, data_dir=data_dir, tokenizer=tokenizer, max_length=MAX_LENGTH, batch_size=BATCH,
        shuffle=shuffle, seed=seed)
    began = time.perf_counter()
    result = train(MODEL, dataset_fn=data(f"train[:{examples}]", True), out=_run_dir(out, f"{start}_{fraction}_{seed}"),
                   model_overrides=overrides, epochs=epochs, batch_size=BATCH, seed=seed, verbose=0,
                   learning_rate=1e-3, **options)
    seconds = time.perf_counter() - began
    accuracy = _accuracy(result.model, data_dir, tokenizer, "test[:500]" if quick else "test")
    return {"start": start, "fraction": fraction, "seed": seed, "examples": examples, "epochs": epochs,
            "test_accuracy": accuracy, "train_seconds": seconds}


def run_table(out: str, *, seeds: int = 3, data_dir=None, quick: bool = False) -> list[dict]:
    """Runs (or continues) every row; writes `OUT/pretrain_finetune.json` and `.md`.

    Returns:
        The rows: start, fraction, seed, examples, epochs, test_accuracy, train_seconds.
    """
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "pretrain_finetune.json")
    rows = read_json(path)["rows"] if os.path.exists(path) else []
    began = time.perf_counter()
    presets = pretrain_towers(out, data_dir=data_dir, quick=quick)
    done = {(r["start"], r["fraction"], r["seed"]) for r in rows}
    for fraction in FRACTIONS:
        for seed in range(seeds):
            for start in ("pretrained", "random"):
                if (start, fraction, seed) in done:
                    continue
                rows.append(_one_row(out, presets, start, fraction, seed, data_dir, quick))
                write_json(path, {"rows": rows})
    atomic_write_text(os.path.join(out, "pretrain_finetune.md"), markdown(rows))
    print(f"pretrain -> fine-tune: {time.perf_counter() - began:.0f} s in this call; {path}")
    return rows


def markdown(rows: list[dict]) -> str:
    """The table: per label fraction and start, mean +- sample std of test accuracy and training time."""
    lines = ["| vqa labels | start | examples | epochs | test accuracy (%) | training time (s) |",
             "|---:|---|---:|---:|---:|---:|"]
    for fraction in FRACTIONS:
        for start in ("pretrained", "random"):
            cell = [r for r in rows if r["fraction"] == fraction and r["start"] == start]
            if not cell:
                continue
            accuracy = np.array([r["test_accuracy"] for r in cell]) * 100
            seconds = np.array([r["train_seconds"] for r in cell])
            label = "pretrained presets, frozen then unfrozen" if start == "pretrained" else "random initialisation"
            lines.append(f"| {fraction:.0%} | {label} | {cell[0]['examples']:,} | {cell[0]['epochs']} | "
                         f"{_mean_std(accuracy, 2)} | {_mean_std(seconds, 0)} |")
    return "\n".join(lines) + "\n"


def _mean_std(values, digits: int) -> str:
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {std:.{digits}f}"


def main(argv=None) -> int:
    """`python -m zoo.demo.pretrain_finetune OUT [--seeds N] [--quick] [--data-dir DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few hundred examples: a smoke test, not a result")
    parser.add_argument("--data-dir", help="TFDS data directory")
    args = parser.parse_args(argv)
    run_table(args.out, seeds=args.seeds, data_dir=args.data_dir, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
