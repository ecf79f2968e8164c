"""The demo's captioning section: `cnn_lstm_captioner` trained on describe texts, decoded and scored.

The describe config suits captioning: its text is a function of the image
(digit, slant, thickness) up to the choice of words, so a caption can be
checked. Training is teacher-forced (`zoo.models.teacher_forcing`: the input
is the caption shifted right behind a start id, the target the caption);
evaluation decodes the test images greedily and by beam search and scores
exact match, digit-correct rate and corpus BLEU-4 (`zoo.models.caption_scores`).
Exact match is bounded by the wording: the dataset draws one of 90 phrasings
per (digit, slant, thickness), so a perfect model that always writes the most
likely phrasing matches about one caption in 90 (word or numeral, template,
thickness word and slant phrase are drawn independently).

Measure from the shell (one seed):
`python -m zoo.demo.captioning --out runs/captioning --seed 0`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import tensorflow as tf

from zoo.core import keys
from zoo.core.atomic import atomic_write_text
from zoo.data import Tokenizer, pipeline
from zoo.demo.contrastive import load_eval_data

__all__ = ["CAPTIONER_OVERRIDES", "teacher_forced_fn", "train_captioner", "evaluate_captioner", "run_trial"]

CONFIG = "describe"
MAX_LENGTH = 16
# Small towers, as in the demo's classifiers: the texts have at most ten words.
CAPTIONER_OVERRIDES = {"embed_dim": 32, "rnn_units": (64,), "attention_dim": 64, "num_heads": 4,
                       "max_length": MAX_LENGTH}


def teacher_forced_fn(vocabulary: list[str], *, batch_size: int, seed: int, split: str = "train",
                      data_dir=None, source_dir=None, max_length: int = MAX_LENGTH):
    """`fn(input_context)` for `zoo.train`: describe batches as (image + shifted ids, ids) pairs, `max_length` ids each."""
    tokenizer = Tokenizer(vocabulary, max_length)
    start = len(vocabulary)

    def to_teacher_forcing(features, _label):
        ids = features[keys.TOKEN_IDS]
        starts = tf.fill([tf.shape(ids)[0], 1], tf.constant(start, ids.dtype))
        inputs = tf.concat([starts, ids[:, :-1]], axis=1)
        return {keys.IMAGE: features[keys.IMAGE], keys.TOKEN_IDS: inputs}, ids

    def fn(input_context):
        ds = pipeline.make_dataset(
            CONFIG, split, data_dir=data_dir, source_dir=source_dir, tokenizer=tokenizer, max_length=max_length,
            batch_size=batch_size * input_context.num_replicas_in_sync, input_context=input_context, seed=seed,
            shuffle=True,
        )
        # The loop needs the pass length to place epoch boundaries (the pipeline's filter hides it).
        count = pipeline.num_examples(CONFIG, split, data_dir, source_dir=source_dir)
        per_pipeline = -(-count // input_context.num_input_pipelines)
        batches = -(-per_pipeline // input_context.get_per_replica_batch_size(batch_size * input_context.num_replicas_in_sync))
        return ds.map(to_teacher_forcing).apply(tf.data.experimental.assert_cardinality(batches))

    return fn


def train_captioner(out: str, seed: int, *, epochs: int = 2, batch_size: int = 64, train_split: str = "train",
                    data_dir=None, source_dir=None):
    """Trains `cnn_lstm_captioner` on describe with `zoo.train`; returns (TrainResult, vocabulary)."""
    import zoo.training

    vocabulary = pipeline.fit_vocabulary(CONFIG, data_dir=data_dir, source_dir=source_dir)
    fn = teacher_forced_fn(vocabulary, batch_size=batch_size, seed=seed, split=train_split, data_dir=data_dir,
                           source_dir=source_dir)
    trained = zoo.training.train(
        "cnn_lstm_captioner", out=out, dataset_fn=fn, vocabulary=vocabulary, epochs=epochs, batch_size=batch_size,
        model_overrides={**CAPTIONER_OVERRIDES, "vocab_size": len(vocabulary)}, learning_rate=3e-3,
        lr_schedule="cosine", seed=seed, verbose=0,
    )
    return trained, vocabulary


def evaluate_captioner(model, vocabulary: list[str], *, beam_widths=(1, 3), split: str = "test", data_dir=None,
                       source_dir=None) -> dict:
    """Decodes `split` at each beam width; returns {"greedy"/"beam3": scores and seconds, "examples": [...]}."""
    import zoo.models

    data = load_eval_data(split, Tokenizer(vocabulary, MAX_LENGTH), data_dir=data_dir, source_dir=source_dir)
    results = {}
    for width in beam_widths:
        start = time.perf_counter()
        captions = zoo.models.generate_captions(model, data.images, vocabulary, beam_width=width)
        scores = zoo.models.caption_scores(captions, data.texts, data.digits)
        name = "greedy" if width == 1 else f"beam{width}"
        results[name] = {**scores, "decode_seconds": time.perf_counter() - start}
        results.setdefault("examples", [{"reference": t} for t in data.texts[:5]])
        for example, caption in zip(results["examples"], captions[:5], strict=True):
            example[name] = caption
    return results


def run_trial(out: str, seed: int, *, epochs: int = 2, train_split: str = "train", eval_split: str = "test",
              data_dir=None, source_dir=None) -> dict:
    """Trains and evaluates one seed; writes OUT/captioning.json and returns its contents."""
    start = time.perf_counter()
    trained, vocabulary = train_captioner(os.path.join(out, "run"), seed, epochs=epochs, train_split=train_split,
                                          data_dir=data_dir, source_dir=source_dir)
    results = {"seed": seed, "epochs": epochs, "train_seconds": time.perf_counter() - start,
               "parameters": int(trained.model.count_params())}
    results.update(evaluate_captioner(trained.model, vocabulary, split=eval_split, data_dir=data_dir,
                                      source_dir=source_dir))
    atomic_write_text(os.path.join(out, "captioning.json"), json.dumps(results, indent=1))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    results = run_trial(args.out, args.seed, epochs=args.epochs, train_split=args.train_split,
                        eval_split=args.eval_split, data_dir=args.data_dir)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
