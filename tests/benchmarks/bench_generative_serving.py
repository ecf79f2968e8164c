"""Dual-encoder and captioner serving speed: SavedModels with the model calls XLA-compiled, and without.

Run: `python tests/benchmarks/bench_generative_serving.py` (about three minutes
on 2 CPU cores; `--quick` for a smoke run). `cnn_lstm_dual_encoder` and
`cnn_lstm_captioner` at their default sizes (vocabulary 1,000, 16 tokens,
random weights) are exported twice each, `xla=True` (the default) and
`xla=False`; both exports of a model are loaded in one process and called in
interleaved rounds, so machine noise hits both alike.

Reported per signature, at batch 1 and batch 64: the median over rounds of
each round's median latency, and the ratio no-XLA / XLA (above 1: the
compiled export is faster). Texts are 4-16 random words; images random pixels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402

VOCAB, LENGTH, CLASSES = 1000, 16, 10
WORDS = ["", "[UNK]"] + [f"w{i}" for i in range(2, VOCAB)]
BATCHES = (1, 64)


def _exports(tmp: str) -> dict[str, dict]:
    """{"xla"/"no_xla": {"dual": loaded, "captioner": loaded}}."""
    keras.utils.set_random_seed(0)
    dual = zoo.build("cnn_lstm_dual_encoder", vocab_size=VOCAB, max_length=LENGTH)
    captioner = zoo.build("cnn_lstm_captioner", vocab_size=VOCAB, max_length=LENGTH)
    prompts = {f"class {i}": [f"w{i + 2} w{i + 3}", f"w{i + 4}"] for i in range(CLASSES)}
    loaded = {}
    for name, xla in (("xla", True), ("no_xla", False)):
        folder = os.path.join(tmp, name)
        loaded[name] = {
            "dual": tf.saved_model.load(zoo.export_model(dual, os.path.join(folder, "dual"), vocabulary=WORDS,
                                                         class_prompts=prompts, xla=xla)),
            "captioner": tf.saved_model.load(zoo.export_model(captioner, os.path.join(folder, "cap"),
                                                              vocabulary=WORDS, xla=xla)),
        }
    return loaded


def _calls(loaded: dict, images: np.ndarray, texts: np.ndarray) -> dict:
    """{(signature, batch): callable} for one variant's exports."""
    dual, captioner = loaded["dual"].signatures, loaded["captioner"].signatures
    calls = {}
    for batch in BATCHES:
        image, text = tf.constant(images[:batch]), tf.constant(texts[:batch])
        calls[("dual encoder serving_default", batch)] = lambda s=dual["serving_default"], x=image: s(image=x)
        calls[("dual encoder embed_image", batch)] = lambda s=dual["embed_image"], x=image: s(image=x)
        calls[("dual encoder embed_text", batch)] = lambda s=dual["embed_text"], x=text: s(text=x)
        calls[("captioner serving_default (greedy)", batch)] = lambda s=captioner["serving_default"], x=image: s(
            image=x)
    return calls


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=30, help="calls per case and variant per round")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 calls: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls = 2, 3

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (max(BATCHES), 28, 28, 1), dtype=np.uint8)
    texts = np.array([" ".join(f"w{w}" for w in rng.integers(2, VOCAB, rng.integers(4, LENGTH + 1)))
                      for _ in range(max(BATCHES))]).astype(bytes)
    with tempfile.TemporaryDirectory() as tmp:
        variants = {name: _calls(loaded, images, texts) for name, loaded in _exports(tmp).items()}
        for calls in variants.values():  # compile each batch size before timing
            for call in calls.values():
                call()
        medians = {(name, case): [] for name in variants for case in variants[name]}
        for _ in range(args.rounds):
            for case in variants["xla"]:
                for name, calls in variants.items():
                    times = []
                    for _ in range(args.calls if case[1] == 1 else max(1, args.calls // 5)):
                        start = time.perf_counter()
                        calls[case]()
                        times.append(time.perf_counter() - start)
                    medians[(name, case)].append(statistics.median(times) * 1e3)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU(s); "
          f"{args.rounds} interleaved rounds; median ms per call")
    print(f"{'signature':<38}{'batch':>6}{'xla':>10}{'no_xla':>10}{'no_xla/xla':>12}")
    for case in variants["xla"]:
        compiled, plain = (statistics.median(medians[(name, case)]) for name in ("xla", "no_xla"))
        print(f"{case[0]:<38}{case[1]:>6}{compiled:>10.3f}{plain:>10.3f}{plain / compiled:>11.2f}x")


if __name__ == "__main__":
    main()
