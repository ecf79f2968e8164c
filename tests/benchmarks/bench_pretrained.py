"""Pretrained towers: training speed of the small model, forward latency of the seed system.

Run: `python tests/benchmarks/bench_pretrained.py` (about 3 minutes on 2 CPU
cores; `--quick` for a smoke run). Reported:

- `bert_resnet_concat_tiny`: training examples per second through `zoo.train`
  (steady state, as `TrainResult.examples_per_second` measures it) on
  synthetic batches of 64, towers trainable and frozen;
- `bert_resnet50_concat` (BERT-base + ResNet50 at 224x224, 134.5 M
  parameters): forward latency at batch 1 and 32 (median and p90 over calls
  after two warm-up calls, `tf.function` around the model).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from zoo.testing import random_inputs  # noqa: E402


def _synthetic(model, examples: int, batch: int):
    inputs = random_inputs(model, batch_size=examples, seed=0)
    labels = np.random.default_rng(0).integers(0, 10, size=examples).astype("int32")
    return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch).cache()


def training_speed(examples: int, epochs: int) -> dict[str, float]:
    """Examples per second of `bert_resnet_concat_tiny` trained by `zoo.train`, towers trainable and frozen."""
    overrides = {"max_length": 24}
    dataset = _synthetic(zoo.build("bert_resnet_concat_tiny", **overrides), examples, 64)
    speeds = {}
    for label, options in (("all trainable", {}), ("towers frozen", {"freeze": ("text_backbone", "image_backbone")})):
        with tempfile.TemporaryDirectory() as out:
            result = zoo.train("bert_resnet_concat_tiny", out=os.path.join(out, "run"), dataset_fn=dataset,
                               model_overrides=overrides, epochs=epochs, batch_size=64, verbose=0, **options)
        speeds[label] = result.examples_per_second
    return speeds


def forward_latency(batches, calls: int) -> dict[int, tuple[float, float]]:
    """Median and p90 seconds per forward call of `bert_resnet50_concat` at each batch size."""
    model = zoo.build("bert_resnet50_concat")
    forward = tf.function(lambda feeds: model(feeds, training=False), reduce_retracing=True)
    latency = {}
    for batch in batches:
        feeds = {k: tf.constant(v) for k, v in random_inputs(model, batch_size=batch, seed=1).items()}
        for _ in range(2):
            forward(feeds)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            np.asarray(forward(feeds))
            times.append(time.perf_counter() - start)
        latency[batch] = (float(np.median(times)), float(np.percentile(times, 90)))
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs: a smoke test, not a measurement")
    args = parser.parse_args()
    examples, epochs, calls = (256, 2, 2) if args.quick else (2048, 3, 10)
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores")
    for label, speed in training_speed(examples, epochs).items():
        print(f"bert_resnet_concat_tiny training, {label}: {speed:,.0f} examples/s (batch 64)")
    for batch, (median, p90) in forward_latency((1, 32), calls).items():
        print(f"bert_resnet50_concat forward, batch {batch}: median {median * 1000:,.0f} ms, p90 {p90 * 1000:,.0f} ms "
              f"({batch / median:,.1f} examples/s)")


if __name__ == "__main__":
    main()
