"""Loading `.keras` files with Keras' safe mode always on unless asked otherwise.

A `.keras` file is a zip holding `config.json` and weights. Its config can name
a `Lambda` layer, whose Python code would be rebuilt (and run) at load time,
which is how a model file becomes a way to run code on the loading machine.
`load_model` reads the config first and refuses any `Lambda` layer before
Keras deserializes anything, and it passes `safe_mode` explicitly, even if
`keras.config.enable_unsafe_deserialization()` was called elsewhere in the
process.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["load_model", "find_lambda_layers", "UnsafeModelError", "CorruptModelError"]

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class UnsafeModelError(ValueError):
    """A model file asks for code execution at load time and safe mode is on."""


class CorruptModelError(ValueError):
    """A `.keras` file is truncated or corrupt (an interrupted copy, a bad disk, an edit)."""


def load_model(path: str | os.PathLike, safe_mode: bool = True, compile: bool = False, custom_objects=None):
    """Loads a `.keras` file with Keras safe mode.

    Args:
        path: a `.keras` file (zip format). Legacy `.h5` files are refused:
            Keras does not apply safe mode to them.
        safe_mode: keep True unless you wrote the file yourself or trust its
            author; False allows `Lambda` layers (arbitrary Python code).
        compile: also restore the optimizer and loss (not needed to serve).
        custom_objects: passed to `keras.saving.load_model`.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: if `path` does not exist (its `filename` is set).
        CorruptModelError: (a ValueError) if the file is a truncated or
            corrupt zip (for example "Bad CRC-32"); the message names the file.
        ValueError: if `path` is not a `.keras` zip file at all.
        UnsafeModelError: (a ValueError) if safe_mode is on and the model
            contains a Lambda layer.
    """
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        error = FileNotFoundError(f"Model file {path!r} does not exist.")
        error.filename = path
        raise error
    if not isinstance(safe_mode, bool):
        raise ValueError(f"safe_mode={safe_mode!r}: expected True or False.")
    check_model_file(path)
    if safe_mode:
        lambdas = find_lambda_layers(path)
        if lambdas:
            raise UnsafeModelError(
                f"Refusing to load {path!r}: it contains Lambda layer(s) {', '.join(repr(n) for n in lambdas)}, "
                "whose Python code would run on load. Rebuild the model without Lambda layers "
                "(use a registered custom layer), or, only if you trust the file's author, "
                "load it with safe_mode=False."
            )
    with _safe_mode_scope(safe_mode):
        try:
            return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            # The file changed after the check, or damage the CRCs cannot see.
            raise _corrupt(path, error) from error


def check_model_file(path: str | os.PathLike) -> None:
    """Checks that `path` is a complete `.keras` zip whose members all pass their CRC check.

    Reading every member costs one pass over the file, which is what loading
    does anyway; it turns Keras' mid-load `BadZipFile` into a clear error.

    Raises:
        CorruptModelError: a zip that is cut short (no central directory), or
            a member that fails its CRC or cannot be decompressed.
        ValueError: a file that is not a `.keras` zip (for example a legacy
            `.h5` file, which Keras cannot load in safe mode).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(len(_HDF5_MAGIC))
    not_keras = ValueError(
        f"{path!r} is not a .keras model file: expected a zip file ending in '.keras' "
        "(legacy .h5 files are not loaded because Keras cannot load them in safe mode)."
    )
    if not path.endswith(".keras") or head.startswith(_HDF5_MAGIC):
        raise not_keras
    if not zipfile.is_zipfile(path):
        # A zip starts with a local file header and ends with the central
        # directory: the header without the end is a file cut short.
        if head.startswith(_ZIP_MAGIC) or not head:
            raise _corrupt(path, "the end of the zip archive is missing" if head else "the file is empty")
        raise not_keras
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise _corrupt(path, error) from None
    if bad is not None:
        raise _corrupt(path, f"member {bad!r} fails its CRC check")


def _corrupt(path: str, cause) -> CorruptModelError:
    detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return CorruptModelError(
        f"Model file {path!r} is truncated or corrupt ({detail}); restore it from a backup or save the model again."
    )


def find_lambda_layers(path: str | os.PathLike) -> list[str]:
    """Returns the names of the Lambda layers a `.keras` file's config contains.

    Nested models (a functional model inside another, wrappers such as
    `TimeDistributed`) are searched too.

    Raises:
        ValueError: if the file has no readable `config.json`.
    """
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, json.JSONDecodeError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path!r} is not a readable .keras file: {error}") from None
    return [name for name in _lambda_names(config)]


def _lambda_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("class_name") == "Lambda" or str(node.get("registered_name", "")).endswith(">Lambda"):
            config = node.get("config") or {}
            yield str(config.get("name", "<unnamed>"))
        for value in node.values():
            yield from _lambda_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _lambda_names(value)


@contextlib.contextmanager
def _safe_mode_scope(safe_mode: bool):
    # Keras lets a process-wide `enable_unsafe_deserialization()` override the
    # safe_mode argument; its scope object restores the argument's meaning.
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:
        yield
        return
    with SafeModeScope(safe_mode):
        yield
