"""`zoo train NAME --data CONFIG --epochs N --batch-size B --strategy S --out DIR`.

Trains a registered model on a `zoo.data` config through `zoo.train`. Running
the same command again after a kill or preemption continues from the last
checkpoint in DIR; a run stopped by SIGTERM saves first and exits with
status 42 so a scheduler knows to restart it.

Every option is checked (model name and overrides, data config, split names
and slice syntax, numbers) before any data is opened or any folder created;
only `--profile`'s bound by the run's steps waits for the split's size,
unless `--steps-per-epoch` gives it (it is still checked before training).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys

from zoo.cli.build_cmd import parse_overrides
from zoo.training.config import KINDS, LR_SCHEDULES, MEASURED_MAX_CORES, OPTIMIZERS, TrainConfig

_DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
# Options of this command that are not TrainConfig fields, with their defaults.
_MAX_LENGTH = 32
_TRAIN_SPLIT, _VALIDATION_SPLIT = "train", "validation"
# For --help only: the real list (zoo.data.pipeline.CONFIGS) comes with TFDS and
# TensorFlow, which help must not load; a test keeps the two equal.
DATA_CONFIGS_HELP = ("vqa", "caption", "digits", "describe")


def add_parser(subparsers):
    d = _DEFAULTS
    parser = subparsers.add_parser(
        "train",
        help="train a model on a dataset config, resuming from checkpoints",
        description="Train a registered model with tf.distribute; re-run the same command to resume.",
    )
    parser.add_argument("name", help="registered model name (see `zoo list`)")
    parser.add_argument("--data", required=True, metavar="CONFIG",
                        help=f"dataset config: {', '.join(DATA_CONFIGS_HELP)}")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run directory (config, metrics, model, checkpoints, logs)")
    parser.add_argument("--epochs", type=int, default=d["epochs"], help="passes over the data (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"],
                        help="examples per replica per step (default %(default)s)")
    parser.add_argument("--strategy", choices=KINDS, default=d["strategy"],
                        help="tf.distribute strategy (default %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="model hyperparameter override, Python literal values (repeatable)")
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", metavar="DIR", help="TFDS data directory (prepared there on first use; "
                      "default TFDS's, ~/tensorflow_datasets)")
    data.add_argument("--source-dir", metavar="DIR", help="official MNIST files (default: $ZOO_DATA_DIR)")
    data.add_argument("--train-split", default=_TRAIN_SPLIT,
                      help="split or TFDS slice to train on, e.g. 'train[:2000]' (default %(default)s)")
    data.add_argument("--validation-split", default=_VALIDATION_SPLIT,
                      help="split or slice validated on after each epoch; 'none' skips validation (default %(default)s)")
    data.add_argument("--max-length", type=int, default=_MAX_LENGTH, help="text length in tokens (default %(default)s)")
    data.add_argument("--steps-per-epoch", type=int, default=d["steps_per_epoch"],
                      help="steps per epoch (default: one pass over the split)")
    data.add_argument("--validation-steps", type=int, default=d["validation_steps"],
                      help="cap on validation steps per epoch (default: the whole split)")
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--optimizer", default=d["optimizer"], choices=OPTIMIZERS, help="(default %(default)s)")
    opt.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=d["learning_rate"],
                     help="peak learning rate (default %(default)s)")
    opt.add_argument("--lr-schedule", default=d["lr_schedule"], choices=LR_SCHEDULES, help="(default %(default)s)")
    opt.add_argument("--warmup-steps", type=int, default=d["warmup_steps"],
                     help="linear warm-up steps, cosine schedule only (default %(default)s)")
    opt.add_argument("--early-stopping", dest="early_stopping_patience", type=int, metavar="PATIENCE",
                     default=d["early_stopping_patience"],
                     help="stop after PATIENCE epochs without improvement of --monitor (default: off)")
    opt.add_argument("--monitor", default=d["monitor"], help="metric for early stopping (default %(default)s)")
    tune = parser.add_argument_group("fine-tuning (pretrained towers)")
    tune.add_argument("--freeze", nargs="+", default=[], metavar="TOWER",
                      help="towers to freeze: layer names (text_backbone) or prefixes (text, image)")
    tune.add_argument("--unfreeze-epoch", type=int, metavar="EPOCH",
                      help="0-based epoch from which the frozen towers train (default: frozen throughout)")
    tune.add_argument("--backbone-lr-multiplier", type=float, default=d["backbone_lr_multiplier"], metavar="FACTOR",
                      help="learning-rate factor for the towers once unfrozen (default %(default)s)")
    run = parser.add_argument_group("execution")
    run.add_argument("--seed", type=int, default=d["seed"],
                     help="seed everything and make ops deterministic (default: unseeded; not with --jit: "
                          "XLA has no deterministic MaxPool gradient)")
    run.add_argument("--mixed-precision", action="store_true", help="float16 (GPU) / bfloat16 compute")
    run.add_argument("--jit", action="store_true", help="compile the training step with XLA")
    run.add_argument("--steps-per-execution", type=int, default=d["steps_per_execution"],
                     help="training steps per tf.function call (default %(default)s)")
    run.add_argument("--intra-op-threads", type=int, default=d["intra_op_threads"], metavar="N",
                     help="TensorFlow intra-op CPU threads; 0 = TensorFlow's default (default: 1 for models "
                          f"with a recurrent text tower on hosts of up to {MEASURED_MAX_CORES} cores, measured "
                          "faster; else 0)")
    run.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"],
                     help="steps between checkpoints; 0 = epoch ends only (default %(default)s)")
    run.add_argument("--keep-checkpoints", type=int, default=d["keep_checkpoints"],
                     help="checkpoints kept (default %(default)s)")
    run.add_argument("--profile", type=step_range, metavar="START:STOP",
                     help="trace global steps START to STOP with TensorFlow's profiler into DIR/logs "
                          "(view: tensorboard --logdir DIR/logs, Profile tab; default: off)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def step_range(text: str) -> tuple[int, int]:
    """Parses `--profile START:STOP` into (start, stop); the range itself is checked by TrainConfig."""
    start, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start), int(stop)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected START:STOP, two global step numbers such as 10:15") from None


# TrainConfig's field names as the flags that set them, for its error messages.
_FLAGS = {
    "epochs": "--epochs", "batch_size": "--batch-size", "steps_per_epoch": "--steps-per-epoch",
    "validation_steps": "--validation-steps", "strategy": "--strategy", "optimizer": "--optimizer",
    "learning_rate": "--lr", "lr_schedule": "--lr-schedule", "warmup_steps": "--warmup-steps",
    "early_stopping_patience": "--early-stopping", "monitor": "--monitor", "checkpoint_every": "--checkpoint-every",
    "keep_checkpoints": "--keep-checkpoints", "seed": "--seed", "mixed_precision": "--mixed-precision",
    "jit": "--jit", "steps_per_execution": "--steps-per-execution", "deterministic": "deterministic",
    "profile": "--profile", "intra_op_threads": "--intra-op-threads",
}


def as_flags(message: str) -> str:
    """Rewrites TrainConfig's `field=value` wording as the command's `--flag=value`."""
    return re.sub(r"(?<![\w-])(\w+)=", lambda m: f"{_FLAGS.get(m.group(1), m.group(1))}=", message)


def options(args) -> dict:
    """The TrainConfig fields given by the command line."""
    return dict(
        epochs=args.epochs, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
        validation_steps=args.validation_steps, strategy=args.strategy, optimizer=args.optimizer,
        learning_rate=args.learning_rate, lr_schedule=args.lr_schedule, warmup_steps=args.warmup_steps,
        early_stopping_patience=args.early_stopping_patience, monitor=args.monitor,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints, seed=args.seed,
        mixed_precision=args.mixed_precision, jit=args.jit, steps_per_execution=args.steps_per_execution,
        verbose=0 if args.quiet else 1, freeze=tuple(args.freeze), unfreeze_epoch=args.unfreeze_epoch,
        backbone_lr_multiplier=args.backbone_lr_multiplier, profile=args.profile,
        intra_op_threads=args.intra_op_threads,
    )


def validate(args) -> tuple[dict, str | None]:
    """Checks every option without reading data or writing anything.

    Returns:
        (model overrides, validation split or None).

    Raises:
        UsageError: naming the option, the value and what is allowed.
    """
    from zoo.cli.main import UsageError, did_you_mean

    overrides = parse_overrides(args.overrides)
    try:
        TrainConfig(**options(args))
    except ValueError as error:
        raise UsageError(as_flags(str(error))) from None
    from zoo.data.pipeline import CONFIGS

    if args.data not in CONFIGS:
        raise UsageError(f"--data {args.data!r}: unknown data config.{did_you_mean(args.data, CONFIGS)} "
                         f"Expected one of {', '.join(CONFIGS)}.")
    if args.max_length < 1:
        raise UsageError(f"--max-length {args.max_length}: expected a positive number of tokens.")
    validation_split = None if str(args.validation_split).lower() == "none" else args.validation_split
    for flag, value in (("--data-dir", args.data_dir), ("--source-dir", args.source_dir)):
        if value is not None and os.path.exists(value) and not os.path.isdir(value):
            raise UsageError(f"{flag} {value!r} is a file, expected a directory.")
    if args.source_dir is not None and not os.path.isdir(args.source_dir):
        raise UsageError(f"--source-dir {args.source_dir!r} does not exist: expected the folder of the MNIST files.")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is a file, expected a run directory.")

    from zoo.data import pipeline
    from zoo.registry import get_entry, resolve_hyperparameters

    for flag, split in (("--train-split", args.train_split), ("--validation-split", validation_split)):
        if split is not None:
            try:
                pipeline.check_split(args.data, split)
            except ValueError as error:
                raise UsageError(f"{flag}: {error}") from None
    accepted = get_entry(args.name).defaults
    # The data config sets these unless --set does; --max-length is checked with the overrides.
    implied = {"max_length": args.max_length} if "max_length" in accepted and "max_length" not in overrides else {}
    resolve_hyperparameters(args.name, **implied, **overrides)
    return overrides, validation_split


def run(args) -> int:
    overrides, validation_split = validate(args)

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
            **options(args),
        )
    except Preempted as stop:
        print(f"zoo train: {stop}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    if not args.quiet:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
        print(f"Trained {args.name}: {result.step} steps, {result.epoch} epoch(s); {shown}")
        print(f"Wrote {os.path.join(result.out, 'model.keras')}")
        if args.profile is not None:
            _report_profile(args.profile, result)
    return 0


def _report_profile(profile: tuple[int, int], result) -> None:
    """Says where the trace went and how to open it, or why there is none (the range was already passed)."""
    start, stop = profile
    if result.profile_dir is None:
        if result.step <= start:
            why = f"the run ended at step {result.step}, before step {start}"
        elif result.already_complete or (result.resumed_from_step or 0) >= stop:
            why = f"the run had passed step {stop} before this call"
        else:
            why = "another TensorFlow profiler was running"
        print(f"No profile written: {why}.")
        return
    logs = os.path.join(result.out, "logs")
    print(f"Wrote a profile of steps {start} to {stop} in {result.profile_dir}")
    print(f"View it with: tensorboard --logdir {logs}  (Profile tab; needs pip install tensorboard-plugin-profile)")


def interrupted(args) -> str | None:
    """What an interrupt leaves: the run folder when it holds a checkpoint to resume from."""
    checkpoints = os.path.join(args.out, "checkpoints")
    if os.path.isdir(checkpoints) and any(name.startswith("ckpt-") for name in os.listdir(checkpoints)):
        return f"state saved in {args.out}; run the same command to resume"
    return "no checkpoint was written yet"
