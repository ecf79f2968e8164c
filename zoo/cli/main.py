"""Entry point of the `zoo` command: parses arguments and dispatches.

Each subcommand lives in `zoo/cli/<name>_cmd.py` and provides
`add_parser(subparsers)` and `run(args) -> int`, and optionally
`interrupted(args) -> str | None` (what an interrupt leaves behind). Parsing
and `--help` import no TensorFlow: the subcommand modules take their choices
and defaults from TensorFlow-free constants and import the library inside
`run`.

Every failure ends in exactly one line on stderr, `zoo COMMAND: error: ...`,
and an exit code, never a traceback unless `--verbose` is given:

- 2: bad input (usage errors, unknown names, invalid values: `UsageError`,
  `ValueError`, and errors the zoo raises about a path the user gave);
- 1: the environment failed (disk full, read-only, permission denied, a file
  missing or corrupt: `OSError` with an errno, `zipfile.BadZipFile`,
  TensorFlow's I/O and data-loss errors) or anything unexpected;
- 130: interrupted (Ctrl-C), with where the state was saved when known.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import importlib
import importlib.util
import logging
import os
import re
import sys
import traceback
import zipfile

from zoo.cli import quiet

SUBCOMMANDS = ("list", "describe", "build", "train", "export", "predict", "demo")

EXIT_ENVIRONMENT = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Raised by subcommands for bad user input; printed as one line, exit code 2.

    A ValueError, so that it stays bad input even when this module runs twice
    (`python -m zoo.cli.main` loads it as `__main__` and as `zoo.cli.main`).
    """


class _Parser(argparse.ArgumentParser):
    """Reports usage errors as one line prefixed with the (sub)command, not the usage block."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def add_verbose(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """Adds `--verbose` to a subcommand; SUPPRESS keeps `zoo --verbose COMMAND` working too."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help=help or "show TensorFlow's logs and warnings, and a traceback on error",
    )


def make_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with every installed subcommand."""
    from zoo.core.version import __version__

    parser = _Parser(prog="zoo", description="Named multimodal Keras models: build, train, export.")
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's logs and warnings, and a traceback on error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in SUBCOMMANDS:
        module_name = f"zoo.cli.{name}_cmd"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        sub = module.add_parser(subparsers)
        if not any("--verbose" in action.option_strings for action in sub._actions):
            add_verbose(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the `zoo` command with `argv` (default: sys.argv[1:]); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_BAD_INPUT
    verbose = bool(getattr(args, "verbose", False))
    # `zoo train` reports its library's INFO records (resuming, strategy); other commands, such as the
    # demo's many runs, only warnings.
    level = logging.INFO if args.command == "train" and not getattr(args, "quiet", False) else logging.WARNING
    with quiet.tensorflow_output(enabled=not verbose), _zoo_logs(f"zoo {args.command}", level):
        return _run(args, verbose)


class _CurrentStderr(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (tests replace it)."""

    def emit(self, record):
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001  (logging must never break the command)
            self.handleError(record)


@contextlib.contextmanager
def _zoo_logs(prefix: str, level: int):
    """Shows the library's own log records (`zoo.*` loggers: strategy, resuming, ...) as `zoo CMD: message`."""
    logger = logging.getLogger("zoo")
    handler = _CurrentStderr(level)
    handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    # Not also through the root logger, which absl gives a handler of its own.
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _run(args, verbose: bool) -> int:
    prefix = f"zoo {args.command}"
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt as interrupt:
        # The library says where it saved, when it did (zoo.training's Interrupted).
        message = str(interrupt)
        if not message:
            note = None
            # A failing hint must never hide the interrupt itself.
            with contextlib.suppress(Exception):
                hook = getattr(args._module, "interrupted", None)
                note = hook(args) if hook is not None else None
            message = "interrupted" + (f"; {note}" if note else "")
        _report(prefix, message, verbose, error=False)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `zoo list | head`: the reader left; nothing more to say.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (keeps the interpreter's final flush quiet)
        return EXIT_ENVIRONMENT
    except Exception as error:  # noqa: BLE001  (turned into one line; --verbose shows the traceback)
        code, message = describe_error(error)
        _report(prefix, message, verbose)
        return code


def did_you_mean(value, choices, cutoff: float = 0.6) -> str:
    """" Did you mean 'x'?" for choices similar enough to `value`, else ""."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3, cutoff=cutoff)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def describe_error(error: BaseException) -> tuple[int, str]:
    """The exit code and one-line message for an exception raised by a subcommand.

    Decided by the exception's type, so errors added to the library later are
    reported the same way: bad input (2) or a failing environment (1).
    """
    if type(error).__name__.startswith("Corrupt"):
        # A damaged file (the library's CorruptModelError, a ValueError): the disk's fault, not the input's.
        return EXIT_ENVIRONMENT, _first_line(error)
    if isinstance(error, UsageError | ValueError):
        return EXIT_BAD_INPUT, _first_line(error)
    if isinstance(error, zipfile.BadZipFile):
        return EXIT_ENVIRONMENT, f"corrupt or truncated file: {_first_line(error)}"
    if isinstance(error, OSError):
        if error.errno is None:
            # Raised by the zoo itself about a path the user named ("does not exist", "exists; pass --overwrite").
            return EXIT_BAD_INPUT, _first_line(error)
        return EXIT_ENVIRONMENT, _os_error_line(error)
    tf_kind = _tensorflow_error_kind(error)
    if tf_kind == "input":
        return EXIT_BAD_INPUT, _first_line(error)
    if tf_kind == "environment":
        return EXIT_ENVIRONMENT, f"{type(error).__name__}: {_first_line(error)}"
    if isinstance(error, ImportError) or type(error).__module__.split(".")[0] == "zoo":
        # The zoo's own exceptions (a run folder locked by another training, a run not finished) are
        # written for the user: the message alone.
        return EXIT_ENVIRONMENT, _first_line(error)
    return EXIT_ENVIRONMENT, f"{type(error).__name__}: {_first_line(error)} (run with --verbose for the traceback)"


_ERRNO_HINTS = {
    errno.ENOSPC: "free some space and run the same command again",
    errno.EROFS: "the file system is read-only; choose a writable location",
    errno.EACCES: "check the file's permissions",
    errno.EPERM: "check the file's permissions",
    errno.ENOENT: "check the path",
    errno.EDQUOT: "disk quota exceeded; free some space",
}


def _os_error_line(error: OSError) -> str:
    cause = error.strerror or os.strerror(error.errno)
    name = errno.errorcode.get(error.errno, str(error.errno))
    files = [f for f in (error.filename, getattr(error, "filename2", None)) if f is not None]
    where = " -> ".join(repr(os.fspath(f)) if isinstance(f, str | os.PathLike) else repr(f) for f in files)
    hint = _ERRNO_HINTS.get(error.errno)
    return (f"{where}: " if where else "") + f"{cause} [{name}]" + (f"; {hint}" if hint else "")


# TensorFlow's error classes, by name, so that this module imports no TensorFlow.
_TF_INPUT_ERRORS = {"InvalidArgumentError", "OutOfRangeError", "FailedPreconditionError"}
_TF_ENVIRONMENT_ERRORS = {
    "NotFoundError", "PermissionDeniedError", "ResourceExhaustedError", "DataLossError", "AlreadyExistsError",
    "UnavailableError", "AbortedError", "DeadlineExceededError", "InternalError", "UnknownError",
}


def _tensorflow_error_kind(error: BaseException) -> str | None:
    for cls in type(error).__mro__:
        if cls.__module__.startswith("tensorflow"):
            if cls.__name__ in _TF_INPUT_ERRORS:
                return "input"
            if cls.__name__ in _TF_ENVIRONMENT_ERRORS:
                return "environment"
    return None


# TensorFlow prefixes graph errors with the function node that raised them, e.g.
# "{{function_node __wrapped__DecodeImage_device_/job:localhost/...}} Unknown image
# file format"; the user needs only what follows.
_NODE_NAME = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]\s*(name:\s*\S*)?\s*$")


def clean_message(text: str) -> str:
    """Strips TensorFlow's function-node prefixes and op suffixes from an error message."""
    return _OP_SUFFIX.sub("", _NODE_NAME.sub("", text)).strip()


def _first_line(error: BaseException) -> str:
    text = clean_message(str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _report(prefix: str, message: str, verbose: bool, *, error: bool = True) -> None:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    print(f"{prefix}: {'error: ' if error else ''}{message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    # The subcommands import zoo.cli.main; run that one module, not this `__main__` copy.
    from zoo.cli.main import main as _main

    sys.exit(_main())
