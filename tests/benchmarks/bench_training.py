"""Training throughput: the zoo's loop against plain `model.fit`, same model, same data.

Trains `cnn_lstm_concat_seed` at batch 128 through `zoo.train` and through
`keras.Model.fit` in alternating rounds in one process (the machine is noisy,
so the variants are interleaved) and prints each round, the medians and the
ratio loop / fit. Both are measured in steady state the same way: from the end
of the first training step of a run to the end of its last, so tracing and
saving stay out of both figures. Step time is the time between the ends of
consecutive training calls; the script prints examples/s at the median step
time and at the fastest step time, pooled over all rounds (on a shared
machine the fastest step is the least disturbed one).

Data: the first batch x steps examples of the real `vqa` config of
`zoo.data.pipeline` (MNIST images + questions; prepared into the TFDS data
directory on first use from `ZOO_DATA_DIR`), else synthetic batches of the
same shapes; either way both variants read the very same cached tf.data
pipeline.

Run: `python tests/benchmarks/bench_training.py [--rounds 5] [--steps 40]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402

MODEL = "cnn_lstm_concat_seed"
MAX_LENGTH = 32
VOCAB_SIZE = 1000
# Sized to the data: the real config's vocabulary and answer count replace these.
MODEL_OVERRIDES = {"vocab_size": VOCAB_SIZE, "max_length": MAX_LENGTH}


def synthetic_batches(batch_size: int, steps: int) -> tuple[tf.data.Dataset, str]:
    rng = np.random.default_rng(0)
    n = batch_size * steps
    images = rng.random((n, 28, 28, 1), dtype=np.float32)
    tokens = rng.integers(2, VOCAB_SIZE, (n, MAX_LENGTH), dtype=np.int32)
    labels = rng.integers(0, 10, (n,), dtype=np.int32)
    data = tf.data.Dataset.from_tensor_slices(({"image": images, "token_ids": tokens}, labels))
    return data.batch(batch_size, drop_remainder=True).cache(), "synthetic"


def real_batches(batch_size: int, steps: int) -> tuple[tf.data.Dataset, str] | None:
    if importlib.util.find_spec("zoo.data.pipeline") is None:
        return None
    from zoo.data import pipeline
    from zoo.data.text import Tokenizer

    try:
        vocabulary = pipeline.fit_vocabulary("vqa")
        data = pipeline.make_dataset(
            "vqa", f"train[:{batch_size * steps}]", batch_size=batch_size,
            tokenizer=Tokenizer(vocabulary, MAX_LENGTH), max_length=MAX_LENGTH, shuffle=False,
            drop_remainder=True,
        )
    except (OSError, ValueError) as error:
        print(f"real data unavailable ({error}); using synthetic data", file=sys.stderr)
        return None
    MODEL_OVERRIDES.update(vocab_size=len(vocabulary), num_classes=len(pipeline.class_names("vqa")))
    return data.cache(), "vqa (real MNIST + questions)"


class _StepClock(keras.callbacks.Callback):
    """Records when each of fit's training calls ends."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def build_model():
    return zoo.build(MODEL, **MODEL_OVERRIDES)


def run_fit(data, steps: int, batch_size: int, steps_per_execution: int) -> list[float]:
    """Seconds per step of fit's training calls after the first."""
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
        metrics=["accuracy"], steps_per_execution=steps_per_execution,
    )
    clock = _StepClock()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock], shuffle=False)
    return [(b - a) / steps_per_execution for a, b in zip(clock.times, clock.times[1:], strict=False)]


def run_loop(data, steps: int, batch_size: int, steps_per_execution: int) -> list[float]:
    """Seconds per step of zoo.train's training calls after the first."""
    with tempfile.TemporaryDirectory() as out:
        result = zoo.train(
            build_model, dataset_fn=lambda _: data, out=out, epochs=1, batch_size=batch_size,
            steps_per_epoch=steps, strategy="default", checkpoint_every=0, verbose=0,
            steps_per_execution=steps_per_execution,
        )
    return result.step_times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per variant")
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps-per-execution", type=int, default=1, help="for both variants")
    parser.add_argument("--synthetic", action="store_true", help="synthetic data even when the real data is there")
    args = parser.parse_args(argv)

    real = None if args.synthetic else real_batches(args.batch_size, args.steps)
    data, source = real or synthetic_batches(args.batch_size, args.steps)
    # One pass fills the cache, so the rounds read memory, not the data source.
    for _ in data:
        pass
    print(f"model {MODEL}, batch {args.batch_size}, {args.steps} steps per run, "
          f"steps_per_execution {args.steps_per_execution}, data: {source}, "
          f"TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU(s)")
    times = {"loop": [], "fit": []}
    runners = {"loop": run_loop, "fit": run_fit}
    for round_index in range(args.rounds):
        # Alternate which variant goes first so drift favours neither.
        order = ("fit", "loop") if round_index % 2 == 0 else ("loop", "fit")
        for variant in order:
            times[variant].append(runners[variant](data, args.steps, args.batch_size, args.steps_per_execution))
        rates = {v: args.batch_size / statistics.median(times[v][-1]) for v in times}
        print(f"round {round_index + 1}: zoo loop {rates['loop']:8.1f} ex/s   model.fit {rates['fit']:8.1f} ex/s"
              f"   (median step)", flush=True)
    for label, pick in (("median step", statistics.median), ("fastest step", min)):
        # Pooled over all rounds. The fastest step is the one least disturbed
        # by other processes, the fairest figure on a busy machine.
        loop_rate = args.batch_size / pick([t for run in times["loop"] for t in run])
        fit_rate = args.batch_size / pick([t for run in times["fit"] for t in run])
        print(f"{label:>12}: zoo loop {loop_rate:.1f} examples/s, model.fit {fit_rate:.1f} examples/s, "
              f"ratio loop/fit {loop_rate / fit_rate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
