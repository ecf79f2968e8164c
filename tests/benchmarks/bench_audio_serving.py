"""Audio serving speed: the SavedModel's `serving_default` with the model call XLA-compiled, and without.

Run: `python tests/benchmarks/bench_audio_serving.py` (about a minute on 2 CPU
cores; `--quick` for a smoke run). Both exports of one model (default
`cnn_audio_concat` at its default size, random weights) are loaded in one
process and called in interleaved rounds, so machine noise hits both alike.

Reported, at batch 1 on a one-second int16 recording (8,000 samples at 8 kHz)
and a 28x28 uint8 image: the median over rounds of each round's median
latency, and the first call after loading (XLA's compilation, once per batch
size: the signature fixes every recording to the model's window first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn_audio_concat")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50, help="batch-1 calls per variant per round")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 calls: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls = 2, 5

    model = zoo.build(args.model)
    names = [t.name for t in model.inputs]
    rng = np.random.default_rng(0)
    feeds = {"audio": tf.constant(rng.integers(-8000, 8000, (1, 8000), dtype=np.int16))}
    if "image" in names:
        feeds["image"] = tf.constant(rng.integers(0, 256, (1, 28, 28, 1), dtype=np.uint8))
    with tempfile.TemporaryDirectory() as tmp:
        signatures, first_call = {}, {}
        for name, xla in (("xla", True), ("no_xla", False)):
            path = zoo.export_model(model, os.path.join(tmp, name), xla=xla)
            signatures[name] = tf.saved_model.load(path).signatures["serving_default"]
            start = time.perf_counter()
            signatures[name](**feeds)
            first_call[name] = time.perf_counter() - start
        outputs = {name: fn(**feeds)["probabilities"].numpy() for name, fn in signatures.items()}
        diff = float(np.abs(outputs["xla"] - outputs["no_xla"]).max())
        if diff > 1e-5:
            raise SystemExit(f"the two exports disagree by {diff}")

        medians = {name: [] for name in signatures}
        for round_index in range(args.rounds):
            order = list(signatures) if round_index % 2 == 0 else list(reversed(signatures))
            for name in order:
                fn, seconds = signatures[name], []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    fn(**feeds)["probabilities"].numpy()
                    seconds.append(time.perf_counter() - start)
                medians[name].append(statistics.median(seconds))

    print(f"model {args.model}, batch 1, one-second int16 recording; {args.rounds} interleaved rounds of "
          f"{args.calls} calls per variant; outputs agree to {diff:.1e}")
    print(f"{'variant':<8} {'median ms':>10} {'round medians ms':>40} {'first call ms':>14}")
    for name in signatures:
        rounds = " ".join(f"{1000 * m:.2f}" for m in medians[name])
        print(f"{name:<8} {1000 * statistics.median(medians[name]):>10.2f} {rounds:>40} {1000 * first_call[name]:>14.0f}")


if __name__ == "__main__":
    main()
