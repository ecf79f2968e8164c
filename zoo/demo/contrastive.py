"""The demo's contrastive section: train a dual encoder on `describe`, then measure its embeddings.

One trial trains `cnn_lstm_dual_encoder` (or another dual encoder) with
`zoo.train` on the describe config and evaluates on the test split:

* zero-shot digit accuracy: each test image gets the digit whose prompts'
  mean embedding is nearest (CLIP's prompt ensembling), and, as a second
  figure, the digit of the single nearest prompt; the prompts are every
  description the dataset rules can write for the digit
  (`zoo.data.pipeline.class_prompts`, which the SavedModel export uses too);
* a linear probe on the frozen image embeddings of the training split;
* text→image and image→text retrieval over the 10,000 test pairs: Recall@1/5/10
  and mAP@10, with class relevance (same digit) and attribute-matched
  relevance (same digit, slant and thickness).

Measure from the shell (one seed, about 4 minutes on two CPU cores):
`python -m zoo.demo.contrastive --out runs/contrastive --seed 0`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo.core import keys
from zoo.core.atomic import atomic_write_text
from zoo.data import Tokenizer, load_vocabulary, pipeline

__all__ = ["ContrastiveSettings", "default_overrides", "EvalData", "limited_split", "load_eval_data", "train_dual_encoder", "evaluate", "run_trial"]

CONFIG = "describe"
# A small text tower, as in the demo's classifiers (recipes.TEXT_TOWER); the texts are ten words at most.
DEFAULT_OVERRIDES = {"embed_dim": 32, "rnn_units": (64,), "projection_dim": 64}


def default_overrides(model: str) -> tuple:
    """The demo's small-tower overrides that `model` declares (the CLIP and Transformer towers have no `rnn_units`).

    Raises:
        ValueError: an unregistered model name.
    """
    from zoo.registry import get_entry

    declared = get_entry(model).defaults
    return tuple((key, value) for key, value in DEFAULT_OVERRIDES.items() if key in declared)


@dataclasses.dataclass(frozen=True)
class ContrastiveSettings:
    """How the dual encoder of a trial is trained.

    Attributes:
        model: a registered dual encoder.
        epochs, batch_size, learning_rate: the training (warm-up + cosine schedule).
        max_length: tokens per text.
        overrides: model hyperparameters.
        probe_epochs: epochs of the linear probe.
        train_limit: use only the first N training examples (None = all), for quick runs.
    """

    model: str = "cnn_lstm_dual_encoder"
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 2e-3
    max_length: int = 16
    overrides: tuple = tuple(DEFAULT_OVERRIDES.items())
    probe_epochs: int = 10
    train_limit: int | None = None


@dataclasses.dataclass
class EvalData:
    """One split as arrays: images float32 [N,28,28,1], token ids, digits, slant and thickness ids, texts."""

    images: np.ndarray
    token_ids: np.ndarray
    digits: np.ndarray
    slants: np.ndarray
    thicknesses: np.ndarray
    texts: list[str]

    @property
    def attributes(self) -> np.ndarray:
        """[N, 3] (digit, slant, thickness): the key of attribute-matched relevance."""
        return np.stack([self.digits, self.slants, self.thicknesses], axis=1)


def limited_split(split: str, limit: int | None, *, data_dir=None, source_dir=None) -> str:
    """`split`, or its first `limit` examples ("train[:1000]") when the split is larger."""
    if limit is None or limit >= pipeline.num_examples(CONFIG, split, data_dir, source_dir=source_dir):
        return split
    return f"{split}[:{limit}]"


def load_eval_data(split: str, tokenizer: Tokenizer, *, data_dir=None, source_dir=None) -> EvalData:
    """Reads a describe split in file order into `EvalData`, tokenized with `tokenizer`."""
    builder = pipeline.load_builder(CONFIG, data_dir=data_dir, source_dir=source_dir)
    ds = builder.as_dataset(split=split, shuffle_files=False).batch(4096)
    parts = {name: [] for name in ("image", "token_ids", "digit", "slant", "thickness", "text")}
    for batch in ds:
        parts["token_ids"].append(tokenizer(batch[keys.TEXT]).numpy())
        batch = tfds.as_numpy(batch)
        parts["image"].append(batch[keys.IMAGE].astype("float32") / 255.0)
        for name in ("digit", "slant", "thickness"):
            parts[name].append(batch[name])
        parts["text"].extend(t.decode("utf-8") for t in batch[keys.TEXT])
    joined = {k: np.concatenate(v) if k != "text" else v for k, v in parts.items()}
    return EvalData(joined["image"], joined["token_ids"], joined["digit"], joined["slant"], joined["thickness"],
                    joined["text"])


def train_dual_encoder(out: str, settings: ContrastiveSettings, seed: int, *, data_dir=None, source_dir=None):
    """Trains the dual encoder with `zoo.train` on describe; returns the `TrainResult`."""
    import zoo.training

    split = limited_split("train", settings.train_limit, data_dir=data_dir, source_dir=source_dir)
    steps = -(-pipeline.num_examples(CONFIG, split, data_dir, source_dir=source_dir) // settings.batch_size)
    return zoo.training.train(
        settings.model, out=out, data=CONFIG, data_dir=data_dir, source_dir=source_dir, train_split=split,
        max_length=settings.max_length, model_overrides=dict(settings.overrides), epochs=settings.epochs,
        batch_size=settings.batch_size, learning_rate=settings.learning_rate, lr_schedule="cosine",
        warmup_steps=min(steps // 5, steps * settings.epochs - 1), seed=seed, verbose=0,
    )


def zero_shot_prompts(tokenizer: Tokenizer) -> list[np.ndarray]:
    """Per digit, the token ids of every description the dataset rules can write for it."""
    return [tokenizer(tf.constant(prompts)).numpy() for prompts in pipeline.class_prompts(CONFIG).values()]


def evaluate(model, tokenizer: Tokenizer, train: EvalData, test: EvalData, *, probe_epochs: int, seed: int) -> dict:
    """Zero-shot accuracy, linear-probe accuracy and retrieval metrics (fractions), as a flat dict."""
    import zoo.models as m

    image_emb = m.embed_images(model, test.images)
    text_emb = m.embed_texts(model, test.token_ids)
    prompts = zero_shot_prompts(tokenizer)
    classes = m.class_embeddings(model, prompts)
    results = {"zero_shot_accuracy": float((m.zero_shot_classify(image_emb, classes) == test.digits).mean())}
    # The other common reading of zero-shot: the class of the single nearest prompt.
    prompt_classes = np.concatenate([np.full(len(ids), digit) for digit, ids in enumerate(prompts)])
    nearest = prompt_classes[m.zero_shot_classify(image_emb, m.embed_texts(model, np.concatenate(prompts)))]
    results["zero_shot_nearest_prompt_accuracy"] = float((nearest == test.digits).mean())
    probe = m.linear_probe(m.embed_images(model, train.images), train.digits, image_emb, num_classes=10,
                           epochs=probe_epochs, seed=seed)
    results["linear_probe_accuracy"] = float((probe == test.digits).mean())
    for direction, (queries, gallery) in {"t2i": (text_emb, image_emb), "i2t": (image_emb, text_emb)}.items():
        for relevance, key in {"class": test.digits, "attribute": test.attributes}.items():
            scores = m.retrieval_metrics(queries, gallery, key, key)
            results.update({f"{direction}_{relevance}_{name}": value for name, value in scores.items()})
    return results


def run_trial(out: str, settings: ContrastiveSettings, seed: int, *, data_dir=None, source_dir=None) -> dict:
    """Trains and evaluates one seed; writes OUT/contrastive.json and returns its contents."""
    start = time.perf_counter()
    trained = train_dual_encoder(os.path.join(out, "run"), settings, seed, data_dir=data_dir, source_dir=source_dir)
    train_seconds = time.perf_counter() - start
    tokenizer = Tokenizer(load_vocabulary(os.path.join(out, "run", "vocabulary.txt")), settings.max_length)
    train_split = limited_split("train", settings.train_limit, data_dir=data_dir, source_dir=source_dir)
    train_data = load_eval_data(train_split, tokenizer, data_dir=data_dir, source_dir=source_dir)
    test_data = load_eval_data("test", tokenizer, data_dir=data_dir, source_dir=source_dir)
    results = evaluate(trained.model, tokenizer, train_data, test_data, probe_epochs=settings.probe_epochs, seed=seed)
    results.update(model=settings.model, seed=seed, epochs=settings.epochs, train_seconds=train_seconds,
                   eval_seconds=time.perf_counter() - start - train_seconds,
                   parameters=int(trained.model.count_params()), final_loss=trained.metrics.get("loss"))
    atomic_write_text(os.path.join(out, "contrastive.json"), json.dumps(results, indent=1))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="cnn_lstm_dual_encoder")
    parser.add_argument("--epochs", type=int, default=ContrastiveSettings.epochs)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    settings = ContrastiveSettings(model=args.model, epochs=args.epochs, train_limit=args.train_limit,
                                   overrides=default_overrides(args.model))
    print(json.dumps(run_trial(args.out, settings, args.seed, data_dir=args.data_dir), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

