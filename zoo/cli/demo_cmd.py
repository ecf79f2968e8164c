"""`zoo demo [--quick | --full] [--seeds N] [--out DIR]`: the MNIST+text results table."""

from __future__ import annotations

import os
import shlex


def add_parser(subparsers):
    from zoo.cli.main import add_verbose

    parser = subparsers.add_parser(
        "demo",
        help="train and compare the image-only, text-only and fused models on MNIST+text",
        description=(
            "Train the unimodal baselines and the fusion models on the mnist_text configs, evaluate them "
            "on the test split and write results.json, results.md, plots and the best model into --out. "
            "The default grid, with its dual encoder and captioner sections, takes about 8 minutes on two idle CPU cores."
        ),
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="a few hundred examples and one epoch per model: a smoke test, about a minute on two CPU "
                           "cores with data preparation (measured 31-93 s on a shared 2-core machine)")
    size.add_argument("--full", action="store_true",
                      help="every fused classifier on both text configs, same recipe and epochs as the default grid, "
                           "plus the transfer and pretrain -> fine-tune tables (3 seeds unless --seeds)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="seeds per row; the table shows mean ± std (default 1; 3 with --full)")
    parser.add_argument("--out", default="demo_out", metavar="DIR", help="output folder (default: demo_out)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="TFDS data directory for the prepared datasets (default: TFDS's, ~/tensorflow_datasets)")
    parser.add_argument("--mnist-dir", default=None, metavar="DIR",
                        help="folder of the official MNIST files (default: $ZOO_DATA_DIR)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="training batch size of every row (default: each recipe's, 128 seed / 64 zoo)")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export of the best model")
    parser.add_argument("--fresh", action="store_true",
                        help="retrain every row; by default rows already finished in --out with the same settings "
                             "are reused, so an interrupted demo continues where it stopped")
    add_verbose(parser, help="print a line per training epoch, TensorFlow's logs, and a traceback on error")
    parser.add_argument("--data", choices=("mnist_text", "av"), default="mnist_text",
                        help="mnist_text (default): the image + text grids; av: image, audio and text on "
                             "mnist_audio/av, unimodal and fused rows (3 seeds unless --seeds; --out default demo_av; "
                             "--mnist-dir is then the folder holding mnist/ and fsdd/)")
    return parser


def run(args) -> int:
    from zoo.cli.main import UsageError

    seeds = args.seeds if args.seeds is not None else (3 if args.full else 1)
    if seeds < 1:
        raise UsageError(f"--seeds {seeds}: expected a positive number of seeds")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: expected a positive number")
    for flag, value in (("--data-dir", args.data_dir), ("--mnist-dir", args.mnist_dir)):
        if value is not None and os.path.exists(value) and not os.path.isdir(value):
            raise UsageError(f"{flag} {value!r} is not a directory")
    # Prepared data would be reused without reading it: a wrong folder must not pass unnoticed.
    if args.mnist_dir is not None and not os.path.isdir(args.mnist_dir):
        raise UsageError(f"--mnist-dir {args.mnist_dir!r} does not exist: expected the folder of the official "
                         "MNIST files (or its parent); omit it to use $ZOO_DATA_DIR")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} exists and is not a directory")
    if args.data == "av":
        return _run_audio(args, seeds if args.seeds is not None else (1 if args.quick else 3))
    grid = "quick" if args.quick else "full" if args.full else "default"

    from zoo.demo import run_demo

    run_demo(
        args.out,
        grid=grid,
        seeds=seeds,
        data_dir=args.data_dir,
        source_dir=args.mnist_dir,
        batch_size=args.batch_size,
        export=not args.no_export,
        reuse=not args.fresh,
        verbose=int(getattr(args, "verbose", False)),
        log=lambda line: print(line, flush=True),
        command=_command_line(args),
    )
    print(f"wrote {os.path.abspath(args.out)}")
    return 0


def interrupted(args) -> str | None:
    """What an interrupt leaves: finished rows are reused by the same command unless --fresh."""
    if args.fresh or not os.path.isdir(args.out):
        return None
    return f"finished rows are kept in {args.out}; run the same command to continue"


def _command_line(args) -> str:
    """The options that differ from the defaults, as a command to record in the report."""
    parts = ["zoo", "demo"]
    parts += ["--quick"] * args.quick + ["--full"] * args.full
    if args.seeds is not None:
        parts += ["--seeds", str(args.seeds)]
    for flag, value, default in (("--out", args.out, "demo_out"), ("--data-dir", args.data_dir, None),
                                 ("--mnist-dir", args.mnist_dir, None), ("--batch-size", args.batch_size, None)):
        if value != default:
            parts += [flag, shlex.quote(str(value))]
    parts += ["--no-export"] * args.no_export + ["--fresh"] * args.fresh
    return " ".join(parts)


def _run_audio(args, seeds: int) -> int:
    from zoo.cli.main import UsageError

    if args.full:
        raise UsageError("--full applies to --data mnist_text only; --data av has one grid (and --quick)")
    from zoo.demo.audio import run_audio_demo

    out = "demo_av" if args.out == "demo_out" else args.out
    run_audio_demo(out, seeds=seeds, quick=args.quick, data_dir=args.data_dir, source_dir=args.mnist_dir,
                   verbose=int(args.verbose), log=lambda line: print(line, flush=True))
    print(f"wrote {os.path.abspath(out)}")
    return 0
