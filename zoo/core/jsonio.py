"""JSON for configs, metrics, cards and records: one conversion, one atomic writer."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from zoo.core.atomic import atomic_write_text

__all__ = ["to_json", "write_json", "read_json"]


def to_json(value: Any) -> Any:
    """A JSON-ready copy of `value`.

    Mappings become dicts with string keys, lists and tuples become lists,
    NumPy scalars become Python numbers, NaN and infinities become None (JSON
    has no spelling for them), and anything else that JSON cannot hold
    becomes its `repr`.

    Args:
        value: any nesting of mappings, sequences and scalars.

    Returns:
        The converted value.
    """
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def write_json(path: str | os.PathLike, value: Any, *, sort_keys: bool = True) -> None:
    """Writes `value` as indented JSON to `path` atomically.

    Strict: NaN, infinities and objects JSON cannot hold raise, and the old
    file stays as it was; pass `to_json(value)` to convert them instead.

    Args:
        path: the target file; replaced only once the new text is complete.
        value: a JSON-ready value.
        sort_keys: sort mapping keys (stable diffs); False keeps their order.

    Raises:
        TypeError: for an object JSON cannot hold.
        ValueError: for NaN or an infinity.
    """
    text = json.dumps(value, indent=2, sort_keys=sort_keys, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file written by `write_json` (or by hand).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if it is not valid JSON, naming the file and the position.
    """
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{os.fspath(path)} is not valid JSON ({error}); was it edited by hand or cut short?") from error
