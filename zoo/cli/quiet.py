"""Keeps TensorFlow's and absl's logs off the terminal unless the user asks for them.

A command shows the zoo's own output only. Without `--verbose`, and unless the
user set `TF_CPP_MIN_LOG_LEVEL` themselves, `tensorflow_output(enabled=True)`:

- sets `TF_CPP_MIN_LOG_LEVEL=3` for a TensorFlow not loaded yet (TensorFlow
  reads it once, at load);
- filters the C++ log lines (`I0000 00:00:... port.cc:153] ...`, the cuInit
  error of CPU-only machines, absl's "before InitializeLog" banner) out of
  file descriptor 2, because a TensorFlow loaded earlier ignores the variable
  and some lines are written before any setting is read;
- raises the `tensorflow` and `absl` Python loggers to ERROR, which hides
  tf.function retracing warnings and TFDS's absl warnings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading

ENV_VAR = "TF_CPP_MIN_LOG_LEVEL"

# One line of absl/TSL C++ logging: severity, MMDD, time (absl writes 00:00:<epoch seconds>
# before its initialisation), thread id, file:line].
_CPP_LOG = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w.\-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    # The second line of cpu_feature_guard's message, written with the first.
    rb"|To enable the following instructions: .*rebuild TensorFlow)"
)
_CPP_LOG_START = re.compile(rb"^[IWEF]\d{0,4}(?: [\d:. ]*)?$")
_BANNERS = (b"WARNING: All log messages before absl", b"To enable the following instructions: ")
# A line that has not ended after this many bytes is decided on what has come.
_DECIDE_AFTER = 96

_LOGGERS = ("tensorflow", "absl", "tensorflow_datasets")


@contextlib.contextmanager
def tensorflow_output(*, enabled: bool):
    """Hides TensorFlow's log noise inside the block when `enabled` and the user set no log level."""
    if not enabled or user_chose_level():
        yield
        return
    saved = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = "3"
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with _filtered_stderr():
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved


def user_chose_level() -> bool:
    """Whether TF_CPP_MIN_LOG_LEVEL was set by the user rather than by a library.

    Importing JAX (which TensorFlow's import can pull in) sets it to "1" when
    unset, so "1" with JAX loaded counts as not chosen.
    """
    value = os.environ.get(ENV_VAR)
    if value is None:
        return False
    return not (value == "1" and "jax" in sys.modules)


def is_log_line(line: bytes) -> bool:
    """Whether `line` is a line of TensorFlow's C++ (absl) logging."""
    return bool(_CPP_LOG.match(line))


def _may_become_log_line(start: bytes) -> bool:
    return bool(_CPP_LOG_START.match(start)) or any(b.startswith(start) or start.startswith(b) for b in _BANNERS)


@contextlib.contextmanager
def _filtered_stderr():
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced by a test harness or an IDE
        real = False
    if not real:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, os.dup(saved)), name="zoo-stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # drops fd 2's hold on the pipe: the pump sees its end
        os.close(saved)
        # A child process that inherited the pipe may keep it open; do not wait for it.
        pump.join(timeout=2)


def _pump(read_end: int, out: int) -> None:
    """Copies `read_end` to `out` line by line, dropping C++ log lines; passes partial lines (progress bars) at once."""
    buffer, keep = b"", None  # keep: None = undecided line start, True = pass, False = drop
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            buffer += chunk
            passed = []
            while buffer:
                newline = buffer.find(b"\n")
                if keep is None:
                    head = buffer if newline < 0 else buffer[: newline + 1]
                    if is_log_line(head):
                        keep = False
                    elif newline >= 0 or len(buffer) >= _DECIDE_AFTER or not _may_become_log_line(buffer):
                        keep = True
                    else:
                        break  # wait for the rest of a line that may be a log line
                if newline < 0:
                    piece, buffer = buffer, b""
                else:
                    piece, buffer = buffer[: newline + 1], buffer[newline + 1 :]
                if keep:
                    passed.append(piece)
                if newline >= 0:
                    keep = None
            if passed:
                _write_all(out, b"".join(passed))
        if buffer and keep is not False and not is_log_line(buffer):
            _write_all(out, buffer)
    finally:
        os.close(read_end)
        os.close(out)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
