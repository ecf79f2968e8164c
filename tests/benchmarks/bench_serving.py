"""Serving speed: the exported SavedModel next to `model.predict` and a jit-compiled call.

Run: `python tests/benchmarks/bench_serving.py` (about 2 minutes on 2 CPU cores;
`--quick` for a smoke run). Variants are interleaved round by round in one
process, so machine noise hits all of them alike; figures are medians.

Variants:
- `saved_model`: the `serving_default` signature of `zoo.export` loaded with
  `tf.saved_model.load`, fed raw uint8 images and raw strings (input checks,
  scaling and tokenization included).
- `saved_model_whole_xla`: the same export with the model never called in
  parts (`zoo.export.model_call.SPLIT_MIN_BATCH` past any batch): what
  batch 128 costs with the whole model under XLA.
- `predict`: `model.predict` on ready inputs (float images, token ids).
- `jit_call`: `tf.function(model, jit_compile=True)` on ready inputs (XLA).
- `jit_call+tokenize`: the tokenizer (string ops cannot be compiled) then the
  XLA-compiled model: the cost of a raw request served that way.

Reported: latency at batch 1 (p50 and p99 over every call), throughput at
batch 128 (median over rounds, examples per second).
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
from zoo.data.text import Tokenizer  # noqa: E402
from zoo.export import model_call  # noqa: E402

QUESTIONS = [b"is it even?", b"what digit is this?", b"is it greater than four?", b"does the image show a seven?"]


def _vocabulary(size: int) -> list[str]:
    words = ["is", "it", "even", "odd", "what", "digit", "this", "greater", "than", "four", "does", "the",
             "image", "show", "a", "seven"]
    return ["", "[UNK]"] + words + [f"w{i}" for i in range(size - 2 - len(words))]


def _variants(model, export_dirs: dict[str, str], vocabulary: list[str], max_length: int):
    signature = tf.saved_model.load(export_dirs["saved_model"]).signatures["serving_default"]
    whole_signature = tf.saved_model.load(export_dirs["saved_model_whole_xla"]).signatures["serving_default"]
    tokenizer = Tokenizer(vocabulary, max_length)
    jit = tf.function(lambda image, ids: model({"image": image, "token_ids": ids}, training=False), jit_compile=True)
    tokenize = tf.function(tokenizer.__call__)

    def saved_model(raw, ready):
        return signature(image=raw["image"], text=raw["text"])["probabilities"].numpy()

    def saved_model_whole_xla(raw, ready):
        return whole_signature(image=raw["image"], text=raw["text"])["probabilities"].numpy()

    def predict(raw, ready):
        return model.predict(ready, verbose=0, batch_size=len(ready["image"]))

    def jit_call(raw, ready):
        return jit(ready["image"], ready["token_ids"]).numpy()

    def jit_call_tokenize(raw, ready):
        image = tf.cast(raw["image"], tf.float32) / 255.0
        return jit(image, tokenize(raw["text"])).numpy()

    return {"saved_model": saved_model, "saved_model_whole_xla": saved_model_whole_xla, "predict": predict, "jit_call": jit_call, "jit_call+tokenize": jit_call_tokenize}


def _inputs(batch: int, vocabulary: list[str], max_length: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    text = [QUESTIONS[i % len(QUESTIONS)] for i in range(batch)]
    raw = {"image": tf.constant(image), "text": tf.constant(text)}
    ready = {
        "image": tf.constant(image.astype(np.float32) / np.float32(255.0)),
        "token_ids": Tokenizer(vocabulary, max_length)(tf.constant(text)),
    }
    return raw, ready


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn_lstm_concat")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=40, help="batch-1 calls per variant per round")
    parser.add_argument("--big-calls", type=int, default=4, help="batch-128 calls per variant per round")
    parser.add_argument("--quick", action="store_true", help="2 rounds, few calls: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls, args.big_calls = 2, 5, 1

    max_length = 32
    vocabulary = _vocabulary(1000)
    model = zoo.build(args.model, vocab_size=len(vocabulary), max_length=max_length)
    with tempfile.TemporaryDirectory() as tmp:
        export_dirs = {name: os.path.join(tmp, name) for name in ("saved_model", "saved_model_whole_xla")}
        zoo.export_model(model, export_dirs["saved_model"], vocabulary=vocabulary)
        split_from = model_call.SPLIT_MIN_BATCH
        model_call.SPLIT_MIN_BATCH = 2**31 - 1  # read when the export traces its signatures
        try:
            zoo.export_model(model, export_dirs["saved_model_whole_xla"], vocabulary=vocabulary)
        finally:
            model_call.SPLIT_MIN_BATCH = split_from
        variants = _variants(model, export_dirs, vocabulary, max_length)
        small = _inputs(1, vocabulary, max_length)
        big = _inputs(128, vocabulary, max_length, seed=1)

        # Warm-up (tracing, XLA compilation) and a parity check of every variant.
        reference = variants["jit_call"](*big)
        for name, fn in variants.items():
            fn(*small)
            diff = float(np.abs(fn(*big) - reference).max())
            if diff > 1e-4:
                raise SystemExit(f"{name} disagrees with the jit call by {diff}")

        latencies = {name: [] for name in variants}
        throughput = {name: [] for name in variants}
        for round_index in range(args.rounds):
            order = list(variants) if round_index % 2 == 0 else list(reversed(variants))
            for name in order:
                fn = variants[name]
                for _ in range(args.calls):
                    start = time.perf_counter()
                    fn(*small)
                    latencies[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                for _ in range(args.big_calls):
                    fn(*big)
                throughput[name].append(128 * args.big_calls / (time.perf_counter() - start))

    print(f"model {args.model} (28x28x1 image, {max_length} tokens), {tf.config.threading.get_inter_op_parallelism_threads() or os.cpu_count()} "
          f"CPU threads; {args.rounds} interleaved rounds, {args.calls} batch-1 calls and {args.big_calls} "
          "batch-128 calls per variant per round")
    print(f"{'variant':<22} {'b1 p50 ms':>10} {'b1 p99 ms':>10} {'b128 ex/s':>11} {'b128 vs saved_model':>20}")
    base = float(np.median(throughput["saved_model"]))
    for name in variants:
        ms = np.array(latencies[name]) * 1000
        rate = float(np.median(throughput[name]))
        print(f"{name:<22} {np.percentile(ms, 50):>10.2f} {np.percentile(ms, 99):>10.2f} {rate:>11.0f} {rate / base:>19.2f}x")


if __name__ == "__main__":
    main()
