"""Entry point of the `zoo` command: parses arguments and dispatches.

Each subcommand lives in `zoo/cli/<name>_cmd.py` and provides
`add_parser(subparsers)` and `run(args) -> int`. Bad input ends with exit code 2
and a one-line error on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

SUBCOMMANDS = ("list", "describe", "build", "train", "export", "predict", "demo")


class UsageError(Exception):
    """Raised by subcommands for bad user input; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"zoo: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def make_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with every installed subcommand."""
    parser = _Parser(prog="zoo", description="Named multimodal Keras models: build, train, export.")
    from zoo import __version__

    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in SUBCOMMANDS:
        module_name = f"zoo.cli.{name}_cmd"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the `zoo` command with `argv` (default: sys.argv[1:]); returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, FileExistsError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"zoo {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
