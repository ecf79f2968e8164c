"""`zoo train NAME --data CONFIG --epochs N --batch-size B --strategy S --out DIR`.

Trains a registered model on a `zoo.data` config through `zoo.train`. Running
the same command again after a kill or preemption continues from the last
checkpoint in DIR; a run stopped by SIGTERM saves first and exits with
status 42 so a scheduler knows to restart it.
"""

from __future__ import annotations

import os
import sys

from zoo.cli.build_cmd import parse_overrides

_STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a model on a dataset config, resuming from checkpoints",
        description="Train a registered model with tf.distribute; re-run the same command to resume.",
    )
    parser.add_argument("name", help="registered model name (see `zoo list`)")
    parser.add_argument("--data", required=True, metavar="CONFIG", help="dataset config: vqa, caption or digits")
    parser.add_argument("--out", required=True, metavar="DIR", help="run directory (config, metrics, model, checkpoints, logs)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128, help="examples per replica per step (default 128)")
    parser.add_argument("--strategy", choices=_STRATEGIES, default="auto", help="tf.distribute strategy (default auto)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="model hyperparameter override, Python literal values (repeatable)")
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", metavar="DIR", help="TFDS data directory (prepared there on first use)")
    data.add_argument("--source-dir", metavar="DIR", help="official MNIST files (default: $ZOO_DATA_DIR)")
    data.add_argument("--train-split", default="train", help="split or TFDS slice to train on (default train)")
    data.add_argument("--validation-split", default="validation",
                      help="split or slice validated on after each epoch; 'none' skips validation")
    data.add_argument("--max-length", type=int, default=32, help="text length in tokens (default 32)")
    data.add_argument("--steps-per-epoch", type=int, help="steps per epoch (default: one pass over the split)")
    data.add_argument("--validation-steps", type=int, help="cap on validation steps per epoch")
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd", "rmsprop"))
    opt.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=1e-3)
    opt.add_argument("--lr-schedule", default="constant", choices=("constant", "cosine"))
    opt.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps (cosine schedule)")
    opt.add_argument("--early-stopping", dest="early_stopping_patience", type=int, metavar="PATIENCE",
                     help="stop after PATIENCE epochs without improvement of --monitor")
    opt.add_argument("--monitor", default="val_loss", help="metric for early stopping (default val_loss)")
    run = parser.add_argument_group("execution")
    run.add_argument("--seed", type=int, help="seed everything and make ops deterministic (not with --jit: XLA has no deterministic MaxPool gradient)")
    run.add_argument("--mixed-precision", action="store_true", help="float16 (GPU) / bfloat16 compute")
    run.add_argument("--jit", action="store_true", help="compile the training step with XLA")
    run.add_argument("--steps-per-execution", type=int, default=1, help="training steps per tf.function call")
    run.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints; 0 = epoch ends only")
    run.add_argument("--keep-checkpoints", type=int, default=3)
    run.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def run(args) -> int:
    from zoo.cli.main import UsageError

    overrides = parse_overrides(args.overrides)
    validation_split = None if str(args.validation_split).lower() == "none" else args.validation_split
    if args.data_dir is not None and os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        raise UsageError(f"--data-dir {args.data_dir!r} is a file, expected a directory.")

    import zoo
    from zoo.training import PREEMPTED_EXIT_CODE, Preempted

    try:
        result = zoo.train(
            args.name,
            out=args.out,
            data=args.data,
            data_dir=args.data_dir,
            source_dir=args.source_dir,
            train_split=args.train_split,
            validation_split=validation_split,
            max_length=args.max_length,
            model_overrides=overrides,
            epochs=args.epochs,
            batch_size=args.batch_size,
            steps_per_epoch=args.steps_per_epoch,
            validation_steps=args.validation_steps,
            strategy=args.strategy,
            optimizer=args.optimizer,
            learning_rate=args.learning_rate,
            lr_schedule=args.lr_schedule,
            warmup_steps=args.warmup_steps,
            early_stopping_patience=args.early_stopping_patience,
            monitor=args.monitor,
            checkpoint_every=args.checkpoint_every,
            keep_checkpoints=args.keep_checkpoints,
            seed=args.seed,
            mixed_precision=args.mixed_precision,
            jit=args.jit,
            steps_per_execution=args.steps_per_execution,
            verbose=0 if args.quiet else 1,
        )
    except Preempted as stop:
        print(f"zoo train: {stop}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    if not args.quiet:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
        print(f"Trained {args.name}: {result.step} steps, {result.epoch} epoch(s); {shown}")
        print(f"Wrote {os.path.join(result.out, 'model.keras')}")
    return 0
