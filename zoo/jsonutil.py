"""Turning configs, metrics and cards into values `json.dump` accepts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["to_json"]


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
