"""Checking a value against a type annotation, with messages that say what is wrong.

The registry checks every override of a model against its builder's
annotations before any layer exists; this module is that check.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["coerce_to_annotation"]


def _type_name(annotation, plural: bool = False) -> str:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return "any values" if plural else "any value"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a, plural) for a in typing.get_args(annotation))
    if origin in (tuple, list):
        args = typing.get_args(annotation)
        if not args:
            described = "sequence"
        elif len(args) == 2 and args[1] is Ellipsis:
            described = f"sequence of {_type_name(args[0], plural=True)}"
        elif len(set(args)) == 1:
            described = f"sequence of {len(args)} {_type_name(args[0], plural=True)}"
        else:
            described = f"sequence ({', '.join(_type_name(a) for a in args)})"
        return f"{described.replace('sequence', 'sequences', 1)}" if plural else f"a {described}"
    if origin in (dict, Mapping):
        return "mappings" if plural else "a mapping"
    if annotation is type(None):
        return "None"
    name = getattr(annotation, "__name__", str(annotation))
    if plural:
        return f"{name}s"
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def coerce_to_annotation(model_name: str, key: str, value: Any, annotation) -> Any:
    """Checks a hyperparameter's value against its annotation.

    Args:
        model_name: the model, for the message.
        key: the hyperparameter, for the message.
        value: what the user gave.
        annotation: the builder's annotation (int, float, bool, str, Literal,
            unions, tuples of fixed or open length, mappings).

    Returns:
        The value in canonical form (tuples for sequences, floats for ints
        given where a float is expected).

    Raises:
        ValueError: naming the key, the value and what is allowed, and whether
            the type, the length or the value is wrong.
    """
    ok, coerced = _matches(value, annotation)
    if not ok:
        problem, received = _mismatch(value, annotation)
        raise ValueError(
            f"Invalid {problem} for hyperparameter {key}={value!r} of model {model_name!r}: "
            f"expected {_type_name(annotation)}, got {received}."
        )
    return coerced


def _mismatch(value: Any, annotation) -> tuple[str, str]:
    """What is wrong with a value that does not match: ("value"|"length"|"type", what was received)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        # Report against the alternative the value resembles (same type), if any.
        for arg in args:
            problem, received = _mismatch(value, arg)
            if problem != "type":
                return problem, received
        return "type", type(value).__name__
    if origin is typing.Literal:
        if any(type(value) is type(a) for a in args):
            return "value", repr(value)
        return "type", type(value).__name__
    if origin in (tuple, list) and isinstance(value, list | tuple):
        fixed = args and not (len(args) == 2 and args[1] is Ellipsis)
        if fixed and len(args) != len(value):
            return "length", f"{len(value)} item{'s' if len(value) != 1 else ''}"
        element_types = args if fixed else args[:1] * len(value)
        for position, (item, item_type) in enumerate(zip(value, element_types, strict=False)):
            if not _matches(item, item_type)[0]:
                problem, received = _mismatch(item, item_type)
                return problem, f"{received} at position {position}"
    return "type", type(value).__name__


def _matches(value: Any, annotation) -> tuple[bool, Any]:
    if annotation is Any:
        return True, value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        # `True == 1` in Python; a Literal choice must also match in type.
        return any(value == a and type(value) is type(a) for a in args), value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, coerced = _matches(value, arg)
            if ok:
                return True, coerced
        return False, value
    if origin in (tuple, list):
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            return False, value
        element_types = args
        if len(args) == 2 and args[1] is Ellipsis:
            element_types = (args[0],) * len(value)
        elif args and len(args) != len(value):
            return False, value
        coerced = []
        for item, item_type in zip(value, element_types or (Any,) * len(value), strict=True):
            ok, c = _matches(item, item_type)
            if not ok:
                return False, value
            coerced.append(c)
        return True, tuple(coerced)
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return isinstance(value, Mapping), value
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    return True, value

