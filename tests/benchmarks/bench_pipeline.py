"""Benchmark: examples/s the mnist_text pipeline delivers vs. what training consumes.

Prints medians over interleaved repeats (the machine is noisy):

1. pipeline throughput, model mode, train split: a cold first pass (read +
   PNG decode + tokenize) and a warm pass (from the in-memory cache), with
   deterministic=False and True;
2. training step rate of the seed CNN+LSTM concat model (`cnn_lstm_concat_seed`)
   fed by the pipeline, and fed one resident batch (pure compute), in steps/s
   and examples/s;
3. the ratio pipeline capacity / training consumption (> 1: input is not the
   bottleneck).

Run: `python tests/benchmarks/bench_pipeline.py [--data-dir DIR]` (prepares the
dataset into DIR first if needed, from `ZOO_DATA_DIR`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from zoo.data import pipeline  # noqa: E402
from zoo.data.text import Tokenizer  # noqa: E402


def _pass_rate(ds) -> float:
    start, count = time.perf_counter(), 0
    for _, label in ds:
        count += int(label.shape[0])
    return count / (time.perf_counter() - start)


def pipeline_rates(args, tokenizer, deterministic: bool) -> tuple[float, float]:
    """(cold, warm) examples/s over full passes of the train split."""
    ds = pipeline.make_dataset(
        args.config,
        "train",
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        tokenizer=tokenizer,
        max_length=args.max_length,
        deterministic=deterministic,
    )
    return _pass_rate(ds), _pass_rate(ds)


def training_rate(model, ds, steps: int) -> float:
    """Steps/s of `model.fit` over `steps` steps (after the caller's warm-up)."""
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS's)")
    parser.add_argument("--config", default="vqa", choices=pipeline.TEXT_CONFIGS)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="training steps per timed repeat")
    parser.add_argument("--model", default="cnn_lstm_concat_seed")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    for config in pipeline.CONFIGS:
        pipeline.load_builder(config, data_dir=args.data_dir)
    print(f"dataset ready in {time.perf_counter() - start:.1f} s (includes preparing any config not yet prepared)")
    for config in pipeline.CONFIGS:
        sizes = {s: pipeline.num_examples(config, s, args.data_dir) for s in pipeline.SPLITS}
        print(f"  {config:8s} " + "  ".join(f"{s}={n}" for s, n in sizes.items()))
    vocabulary = pipeline.fit_vocabulary(args.config, data_dir=args.data_dir)
    tokenizer = Tokenizer(vocabulary, args.max_length)

    keras.utils.set_random_seed(0)
    model = zoo.build(
        args.model,
        vocab_size=len(vocabulary),
        max_length=args.max_length,
        num_classes=len(pipeline.class_names(args.config)),
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    fed = pipeline.make_dataset(
        args.config, "train", data_dir=args.data_dir, batch_size=args.batch_size, tokenizer=tokenizer,
        max_length=args.max_length, repeat=True, drop_remainder=True,
    )
    resident = fed.take(1).cache().repeat()
    for ds in (fed, resident):  # warm-up: tracing, cache fill
        model.fit(ds, steps_per_epoch=max(5, args.steps // 4), epochs=1, verbose=0)

    results = {name: [] for name in ("cold", "warm", "cold_det", "warm_det", "train_fed", "train_resident")}
    for _ in range(args.repeats):
        cold, warm = pipeline_rates(args, tokenizer, deterministic=False)
        results["cold"].append(cold)
        results["warm"].append(warm)
        cold, warm = pipeline_rates(args, tokenizer, deterministic=True)
        results["cold_det"].append(cold)
        results["warm_det"].append(warm)
        results["train_fed"].append(training_rate(model, fed, args.steps))
        results["train_resident"].append(training_rate(model, resident, args.steps))
    med = {name: statistics.median(values) for name, values in results.items()}
    spread = {name: (min(values), max(values)) for name, values in results.items()}

    print(f"\npipeline ({args.config}, train, model mode, batch {args.batch_size}), examples/s, median of {args.repeats}:")
    for name, label in (
        ("cold", "first pass, deterministic=False"),
        ("warm", "cached pass, deterministic=False"),
        ("cold_det", "first pass, deterministic=True"),
        ("warm_det", "cached pass, deterministic=True"),
    ):
        lo, hi = spread[name]
        print(f"  {label:34s} {med[name]:10.0f}   (min {lo:.0f}, max {hi:.0f})")
    print(f"\ntraining {args.model} (Adam, batch {args.batch_size}, {tf.config.list_logical_devices()[0].device_type}), "
          f"median of {args.repeats} x {args.steps} steps:")
    for name, label in (("train_fed", "fed by the pipeline"), ("train_resident", "one resident batch")):
        lo, hi = spread[name]
        print(f"  {label:34s} {med[name]:8.2f} steps/s = {med[name] * args.batch_size:8.0f} examples/s   "
              f"(min {lo:.2f}, max {hi:.2f} steps/s)")
    consumption = med["train_resident"] * args.batch_size
    print(f"\npipeline capacity / training consumption: cached {med['warm'] / consumption:.1f}x, "
          f"first pass {med['cold'] / consumption:.1f}x")
    print(f"pipeline-fed / resident step rate: {med['train_fed'] / med['train_resident']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
