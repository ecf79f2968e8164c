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
from collections.abc import Iterator
from typing import Any

__all__ = ["load_model", "find_lambda_layers", "UnsafeModelError"]


class UnsafeModelError(ValueError):
    """A model file asks for code execution at load time and safe mode is on."""


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
        FileNotFoundError: if `path` does not exist.
        ValueError: if `path` is not a `.keras` zip file.
        UnsafeModelError: (a ValueError) if safe_mode is on and the model
            contains a Lambda layer.
    """
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file {path!r} does not exist.")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a .keras model file: expected a zip file ending in '.keras' "
            "(legacy .h5 files are not loaded because Keras cannot load them in safe mode)."
        )
    if not isinstance(safe_mode, bool):
        raise ValueError(f"safe_mode={safe_mode!r}: expected True or False.")
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
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


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
