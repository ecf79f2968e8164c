"""Model hyperparameters that come from the data (classes, vocabulary, text length).

Imports no TensorFlow, so the demo and the command line can call it before
any data is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["data_overrides"]


def data_overrides(
    model_name: str,
    *,
    num_classes: int,
    vocab_size: int | None = None,
    max_length: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fills a registered model's data-dependent hyperparameters from the data.

    `num_classes`, `vocab_size` and `max_length` are set only when the model
    accepts them and the user left them unset (missing or None); a value the
    user gave always wins.

    Args:
        model_name: a registered model name.
        num_classes: the number of label classes of the data.
        vocab_size: the vocabulary size, for text data (None: not text).
        max_length: the text length in tokens, for text data.
        overrides: the user's hyperparameter overrides (not modified).

    Returns:
        A new dict: the user's overrides plus the filled keys.

    Raises:
        ValueError: if `model_name` is not registered.
    """
    from zoo.registry import get_entry

    accepted = get_entry(model_name).defaults
    result = dict(overrides or {})
    wanted = {"num_classes": num_classes, "vocab_size": vocab_size, "max_length": max_length}
    for key, value in wanted.items():
        if value is not None and key in accepted and result.get(key) is None:
            result[key] = value
    return result
