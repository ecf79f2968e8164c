"""Training speed of every model in the demo's grids, and the duration each grid should take.

For each distinct (config, model, overrides) of the chosen grid, trains a few
dozen steps through `zoo.train` (the demo's own path, with the zoo recipe's
augmentation) on the real data and reads its steady-state throughput
(`TrainResult.examples_per_second`: tracing and epoch-end work left out).
Models are measured in interleaved rounds, since the machine is noisy, and the
medians are printed as seconds per epoch of the full training split.
The estimate of a grid's duration adds, per trial, its epochs times the
measured epoch time plus the measured fixed cost of a trial (building,
tracing, one validation pass, evaluation and saving, timed on a one-step run).

Run: `python tests/benchmarks/bench_demo.py [--grid default] [--rounds 3] [--steps 40]`
(needs the offline MNIST files through `ZOO_DATA_DIR`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from zoo.data import pipeline  # noqa: E402
from zoo.demo import datacontext, experiment, grids, recipes  # noqa: E402


def _measure(entry, data, steps, out, batch_size):
    """(examples per second in steady state, wall seconds of the whole run) of `steps` training steps."""
    trial = grids.Trial(entry, seed=0)
    batch_size = batch_size or recipes.RECIPES[entry.recipe].batch_size
    splits = datacontext.Splits(train=steps * batch_size, validation=512, test=512)
    start = time.perf_counter()
    record = experiment.train_trial(trial, data, out, splits=splits, batch_size=batch_size)
    return record["examples_per_second"], time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="default", choices=list(grids.GRIDS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=None, help="default: each row's recipe's")
    args = parser.parse_args(argv)

    entries = grids.grid(args.grid)
    # One measurement per architecture: rows differing only in recipe or epochs train equally fast.
    distinct = {}
    for entry in entries:
        distinct.setdefault((entry.config, entry.model, entry.overrides), entry)
    data = {config: datacontext.prepare_data(config) for config in dict.fromkeys(e.config for e in entries)}
    train_sizes = {config: pipeline.num_examples(config, "train") for config in data}

    speeds = {key: [] for key in distinct}
    with tempfile.TemporaryDirectory() as out:
        fixed = []
        probe = next(iter(distinct.values()))
        for _ in range(2):
            fixed.append(_measure(probe, data[probe.config], 1, out, args.batch_size)[1])
        fixed_cost = statistics.median(fixed)
        for round_index in range(args.rounds):
            for key, entry in distinct.items():
                speed, _ = _measure(entry, data[entry.config], args.steps, out, args.batch_size)
                speeds[key].append(speed)
                print(f"round {round_index + 1}: {entry.config:8s} {entry.model:24s} {speed:8.0f} examples/s",
                      flush=True)

    print(f"\nmedians over {args.rounds} rounds ({args.steps} steps each):")
    epoch_seconds = {}
    for key, entry in distinct.items():
        median = statistics.median(speeds[key])
        epoch_seconds[key] = train_sizes[entry.config] / median
        print(f"  {entry.config:8s} {entry.model:24s} {median:8.0f} examples/s  {epoch_seconds[key]:6.1f} s/epoch")
    print(f"fixed cost per trial (one-step run of {probe.model}): {fixed_cost:.1f} s")
    for seeds in (1, 3):
        total = sum(
            entry.epochs * epoch_seconds[(entry.config, entry.model, entry.overrides)] + fixed_cost
            for entry in entries
        ) * seeds
        print(f"estimated training time of grid {args.grid!r} with {seeds} seed(s): {total / 60:.1f} min "
              "(plus data preparation on a fresh machine and the final plots and export)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
