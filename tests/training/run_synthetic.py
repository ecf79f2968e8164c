"""Trains the tiny test model on synthetic data through `zoo.train`; run as a subprocess by the tests.

Trains into OUT/run (a run folder holds only the run's files) and writes into OUT:
- `ids-<worker>.log`: one line per training step, "STEP id id ...", the
  example ids this worker consumed in it (appended, flushed at once);
- `weights-<worker>.npy`: the final weights, concatenated;
- `history-<worker>.json`: the per-epoch metrics.

`--kill-at-step N` sends SIGKILL to this process right after step N, and
`--sleep S` slows each step down so another process can signal it mid-run, and
`--hold-until PATH` pauses after the first step until PATH exists, so another
process can meet this run mid-way however slowly it starts.
Exit status: 0 done, 3 refused (another process holds the run folder),
42 preempted (state saved), -9 killed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--logical-cpus", type=int, default=0, help="split the CPU into this many devices")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--no-shuffle", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=3)
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--hold-until", help="after the first step, wait until this file exists")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--run-dir", help="train into this folder instead of OUT/run")
    args = parser.parse_args()

    import tensorflow as tf

    if args.logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    import numpy as np

    from tests.training import synthetic
    from zoo.training import PREEMPTED_EXIT_CODE, Preempted, RunLocked, resolve_strategy, train

    strategy = resolve_strategy(args.strategy)
    if resolve_strategy(args.strategy) is not strategy:
        raise AssertionError("resolve_strategy returned a second strategy object")
    worker = 0
    if os.environ.get("TF_CONFIG"):
        worker = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    os.makedirs(args.out, exist_ok=True)
    ids_log = open(os.path.join(args.out, f"ids-{worker}.log"), "a", encoding="utf-8")

    def on_batch_ids(step, ids):
        ids_log.write(f"{step} {' '.join(str(i) for i in ids.tolist())}\n")
        ids_log.flush()
        if args.kill_at_step is not None and step == args.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        if args.sleep:
            time.sleep(args.sleep)
        if args.hold_until:
            deadline = time.monotonic() + 300
            while not os.path.exists(args.hold_until):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{args.hold_until} did not appear within 300 s")
                time.sleep(0.05)

    try:
        result = train(
            synthetic.TINY_MODEL,
            model_overrides={**synthetic.TINY_OVERRIDES, "head_dropout": args.dropout},
            out=args.run_dir or os.path.join(args.out, "run"),
            dataset_fn=synthetic.dataset_fn(
                args.examples, args.batch_size, shuffle_seed=None if args.no_shuffle else 5
            ),
            epochs=args.epochs,
            batch_size=args.batch_size,
            steps_per_epoch=args.steps_per_epoch,
            strategy=args.strategy,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
            keep_checkpoints=2,
            verbose=0,
            on_batch_ids=on_batch_ids,
        )
    except RunLocked as locked:
        print(f"locked: {locked}", flush=True)
        return 3
    except Preempted as stop:
        print(f"preempted at step {stop.step}", flush=True)
        return PREEMPTED_EXIT_CODE
    weights = np.concatenate([np.asarray(w).ravel() for w in result.model.get_weights()])
    np.save(os.path.join(args.out, f"weights-{worker}.npy"), weights)
    with open(os.path.join(args.out, f"history-{worker}.json"), "w", encoding="utf-8") as handle:
        json.dump({"history": result.history, "step": result.step, "epoch": result.epoch}, handle)
    print(f"done at step {result.step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
