"""The zoo next to the same model in PyTorch, on the same machine and the same data.

Protocol (issue "Speed"): the seed model `cnn_lstm_concat_seed` (vocabulary
1,000, 16 tokens, batch 128) on the synthetic data of `shared/bench/common.py`
(uint8 images scaled to [0, 1], 4–16 real tokens then zero padding). Rounds
alternate the two sides (A B A B ...); the script prints each round, then the
medians over rounds and the ratios zoo / PyTorch.

Zoo side, per round:
- training: `zoo.train` with its default settings at batch 128 (examples/s at
  the median step, steady state), in a fresh process where it is the first
  TensorFlow work, as under `zoo train`;
- serving: the `serving_default` signature of the exported SavedModel fed raw
  uint8 images and raw strings (the token ids written as words), at batch 128
  (examples/s, median call) and batch 1 (median latency over the first
  `LATENCY_EXAMPLES` examples in turn, as the peer times its batch 1);
- ONNX Runtime on the ONNX export (uint8 images, token ids), same figures.

PyTorch side: `shared/bench/peer_torch.py` (eager) run by the Python named in
`ZOO_TORCH_PYTHON` (PyTorch is not a dependency of the zoo; give it its own
environment, see shared/bench/README.md). Without it only the zoo side runs.

Run: `ZOO_TORCH_PYTHON=/path/to/torchenv/bin/python python tests/benchmarks/bench_compare.py [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_DIR = os.environ.get("ZOO_BENCH_DIR", os.path.join(ROOT, "..", "shared", "bench"))
sys.path.insert(0, BENCH_DIR)
from common import BATCH, NCLS, SEQ_LEN, VOCAB, make_data  # noqa: E402

MODEL = "cnn_lstm_concat_seed"
WORDS = ["", "[UNK]"] + [f"w{i}" for i in range(2, VOCAB)]


def _texts(tokens: np.ndarray) -> np.ndarray:
    """Each row of token ids as the words the export's tokenizer maps back to those ids."""
    return np.array([" ".join(WORDS[t] for t in row if t) for row in tokens], dtype=object)


# The peer times batch 1 on examples 0-99 in turn; texts of 4-16 tokens take
# different times, so both sides use the same examples.
LATENCY_EXAMPLES = 100


def _median_call(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def zoo_training(steps: int) -> float:
    """Examples/s of `zoo.train` with default settings at the median step, in a fresh process.

    `zoo.train` is the process's first TensorFlow work there, as under `zoo
    train`, so its thread settings take effect; this process has already run
    TensorFlow for the serving side.
    """
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--train-round", "--steps", str(steps)],
        capture_output=True, text=True, timeout=1800, env=dict(os.environ, PYTHONPATH=ROOT),
    )
    line = next((row for row in result.stdout.splitlines() if row.startswith("TRAIN")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"the zoo training round failed ({result.returncode}): {result.stderr[-2000:]}")
    return float(line.split("=")[1])


def _train_round(steps: int) -> float:
    images, tokens, labels = make_data(steps * BATCH)

    def dataset_fn(_):
        return tf.data.Dataset.from_tensor_slices(({"image": images, "token_ids": tokens}, labels)).batch(BATCH).cache()

    with tempfile.TemporaryDirectory() as out:
        result = zoo.train(
            MODEL, dataset_fn=dataset_fn, out=os.path.join(out, "run"), epochs=1, batch_size=BATCH,
            steps_per_epoch=steps, model_overrides={"vocab_size": VOCAB, "max_length": SEQ_LEN, "num_classes": NCLS},
            verbose=0,
        )
    return BATCH / statistics.median(result.step_times)


class ZooServing:
    """The exported SavedModel and ONNX model, loaded once, warmed up."""

    def __init__(self, images, tokens, calls: int):
        self.calls = calls
        model = zoo.build(MODEL, vocab_size=VOCAB, max_length=SEQ_LEN, num_classes=NCLS)
        self.tmp = tempfile.TemporaryDirectory()
        saved = zoo.export_model(model, os.path.join(self.tmp.name, "sm"), vocabulary=WORDS)
        self.signature = tf.saved_model.load(saved).signatures["serving_default"]
        pixels = np.round(images * 255).astype(np.uint8)
        self.big = {"image": tf.constant(pixels[:BATCH]), "text": tf.constant(_texts(tokens[:BATCH]).astype(bytes))}
        self.ones = itertools.cycle(
            [{"image": self.big["image"][i : i + 1], "text": self.big["text"][i : i + 1]} for i in range(LATENCY_EXAMPLES)]
        )
        self.onnx = None
        try:
            import onnxruntime

            path = zoo.export_model(model, os.path.join(self.tmp.name, "onnx"), "onnx", vocabulary=WORDS)
            self.onnx = onnxruntime.InferenceSession(os.path.join(path, "model.onnx"), providers=["CPUExecutionProvider"])
            self.onnx_big = {"image": pixels[:BATCH], "token_ids": tokens[:BATCH].astype(np.int32)}
            self.onnx_ones = itertools.cycle(
                [{k: v[i : i + 1] for k, v in self.onnx_big.items()} for i in range(LATENCY_EXAMPLES)]
            )
        except ImportError as error:
            print(f"ONNX Runtime figures skipped: {error}", file=sys.stderr)
        expected = model.predict({"image": images[:BATCH], "token_ids": tokens[:BATCH]}, verbose=0)
        served = self.signature(**self.big)["probabilities"].numpy()
        if float(np.abs(served - expected).max()) > 1e-4:
            raise SystemExit("the SavedModel disagrees with the Keras model; refusing to time it")
        for _ in range(3):
            self.saved_model(next(self.ones))
            self.saved_model(self.big)
            if self.onnx is not None:
                self.onnx.run(None, next(self.onnx_ones))
                self.onnx.run(None, self.onnx_big)

    def saved_model(self, feeds):
        return self.signature(**feeds)["label"].numpy()

    def measure(self) -> dict[str, float]:
        figures = {
            "saved_model_infer_eps": BATCH / _median_call(lambda: self.saved_model(self.big), self.calls),
            "saved_model_lat_b1_ms": 1e3 * _median_call(lambda: self.saved_model(next(self.ones)), self.calls * 5),
        }
        if self.onnx is not None:
            figures["onnx_infer_eps"] = BATCH / _median_call(lambda: self.onnx.run(None, self.onnx_big), self.calls)
            figures["onnx_lat_b1_ms"] = 1e3 * _median_call(lambda: self.onnx.run(None, next(self.onnx_ones)), self.calls * 5)
        return figures


def torch_round(python: str, steps: int) -> dict[str, float]:
    """One run of the PyTorch peer: its RESULT line as numbers."""
    result = subprocess.run(
        [python, os.path.join(BENCH_DIR, "peer_torch.py"), "--steps", str(steps)],
        capture_output=True, text=True, timeout=1800,
    )
    line = next((row for row in result.stdout.splitlines() if row.startswith("RESULT")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"peer_torch.py failed ({result.returncode}): {result.stderr[-2000:]}")
    return {key: float(value) for key, value in re.findall(r"(\w+)=([\d.]+)", line)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="training steps and batch-128 calls per round")
    parser.add_argument("--train-round", action="store_true", help="internal: one training round, then exit")
    args = parser.parse_args(argv)
    if args.train_round:
        print(f"TRAIN eps={_train_round(args.steps):.1f}")
        return 0
    torch_python = os.environ.get("ZOO_TORCH_PYTHON")

    images, tokens, _ = make_data((args.steps + 10) * BATCH)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s); TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}; model {MODEL}, vocabulary {VOCAB}, {SEQ_LEN} tokens, batch {BATCH}; "
          f"{args.rounds} interleaved rounds; PyTorch: {torch_python or 'not run (set ZOO_TORCH_PYTHON)'}")
    serving = ZooServing(images, tokens, calls=args.steps)
    rounds: dict[str, list[float]] = {}
    for index in range(args.rounds):
        sides = ["zoo", "torch"] if index % 2 == 0 else ["torch", "zoo"]
        for side in sides:
            if side == "torch":
                if not torch_python:
                    continue
                figures = {f"torch_{k}": v for k, v in torch_round(torch_python, args.steps).items()
                           if k in ("train_eps", "infer_eps", "lat_b1_ms")}
            else:
                figures = {"zoo_train_eps": zoo_training(args.steps + 10), **serving.measure()}
            for key, value in figures.items():
                rounds.setdefault(key, []).append(value)
        print(f"round {index + 1}: " + ", ".join(f"{k} {v[-1]:.{2 if k.endswith('_ms') else 0}f}" for k, v in rounds.items()),
              flush=True)

    medians = {key: statistics.median(values) for key, values in rounds.items()}
    print("\nmedians over rounds:")
    for key, value in medians.items():
        print(f"  {key:<24} {value:10.2f}")
    if "torch_train_eps" in medians:
        print("\nratios (zoo / PyTorch eager; latency: PyTorch / zoo, so above 1 means the zoo is faster):")
        print(f"  training           {medians['zoo_train_eps'] / medians['torch_train_eps']:.2f}x")
        print(f"  SavedModel b128    {medians['saved_model_infer_eps'] / medians['torch_infer_eps']:.2f}x")
        print(f"  SavedModel b1      {medians['torch_lat_b1_ms'] / medians['saved_model_lat_b1_ms']:.2f}x")
        if "onnx_infer_eps" in medians:
            print(f"  ONNX Runtime b128  {medians['onnx_infer_eps'] / medians['torch_infer_eps']:.2f}x")
            print(f"  ONNX Runtime b1    {medians['torch_lat_b1_ms'] / medians['onnx_lat_b1_ms']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
