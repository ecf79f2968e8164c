"""The model registry: name -> builder, with validated overrides and model cards.

A builder is a function whose keyword arguments are the model's hyperparameters.
Their defaults are the model's defaults and their annotations are the types an
override must have. `build` checks every override against both (and against the
builder's own value checks) before a single layer is created.

Example:

>>> import zoo
>>> zoo.list_models("cnn_lstm_concat*")
['cnn_lstm_concat', 'cnn_lstm_concat_seed']
>>> model = zoo.build("cnn_lstm_concat", vocab_size=500)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import fnmatch
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from zoo.core import catalog
from zoo.core.annotations import coerce_to_annotation
from zoo.core.jsonio import to_json

__all__ = [
    "ModelEntry",
    "register_model",
    "list_models",
    "build",
    "describe",
    "get_entry",
    "record_demo_accuracy",
    "resolve_hyperparameters",
]

MODALITIES = ("image", "text", "audio")
# How similar (difflib ratio) an unknown name must be to a known one to be
# suggested: typos score above 0.8, while unrelated words still reach 0.6
# against some of 16 names ('nonsense' vs 'cnn_seed': 0.62).
SUGGESTION_CUTOFF = 0.7


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one name before anything is built."""

    name: str
    builder: Callable[..., Any]
    description: str
    origin: str
    modalities: tuple[str, ...]
    fusion: str | None
    defaults: Mapping[str, Any]
    annotations: Mapping[str, Any]
    check: Callable[[dict[str, Any]], None] | None
    demo_accuracy: Mapping[str, float] | None = None
    weights: Mapping[str, str] | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    origin: str = "",
    modalities: tuple[str, ...] | list[str] = (),
    fusion: str | None = None,
    description: str | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
    defaults: Mapping[str, Any] | None = None,
    demo_accuracy: Mapping[str, float] | None = None,
    weights: Mapping[str, str] | None = None,
):
    """Registers a model builder under `name`.

    Args:
        name: the registry name; lowercase letters, digits and underscores.
        origin: where the architecture comes from (a seed system or a paper).
        modalities: the inputs it consumes, e.g. `("image", "text")`.
        fusion: how modalities are joined (`"concat"`, `"attention"`, ...), or
            None for a unimodal model.
        description: one paragraph; defaults to the builder's docstring.
        check: called with the resolved hyperparameters before building; raises
            `ValueError` (through `require`) for values that are invalid together.
        defaults: replaces some of the builder's own keyword defaults, so one
            builder can be registered under several names.
        demo_accuracy: measured test accuracy by dataset config, where known.
        weights: for models with pretrained towers, the published weights
            `pretrained=True` loads, by tower (source, licence, size).

    Returns:
        A decorator that registers the builder and returns it unchanged.

    Raises:
        ValueError: if the name is taken, malformed, or the builder has
            parameters without defaults.
    """
    if not isinstance(name, str) or not name or not all(c.islower() or c.isdigit() or c == "_" for c in name):
        raise ValueError(
            f"Model name {name!r} is not allowed: use lowercase letters, digits and underscores."
        )
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(f"Unknown modalities {unknown} for {name!r}; expected some of {MODALITIES}.")

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(
                f"Model name {name!r} is already registered (by "
                f"{_REGISTRY[name].builder.__module__}.{_REGISTRY[name].builder.__qualname__}); "
                "choose another name."
            )
        signature = inspect.signature(builder)
        hints = typing.get_type_hints(builder)
        builder_defaults = {}
        for parameter in signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise ValueError(f"Builder for {name!r} must list its hyperparameters explicitly, not *args/**kwargs.")
            if parameter.default is parameter.empty:
                raise ValueError(
                    f"Builder for {name!r}: hyperparameter {parameter.name!r} needs a default value."
                )
            builder_defaults[parameter.name] = parameter.default
        resolved_defaults = dict(builder_defaults)
        for key, value in (defaults or {}).items():
            if key not in builder_defaults:
                raise ValueError(f"Registration of {name!r} sets default {key!r}, which the builder does not take.")
            resolved_defaults[key] = value
        doc = description or inspect.getdoc(builder) or ""
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=builder,
            description=doc.strip(),
            origin=origin,
            modalities=tuple(modalities),
            fusion=fusion,
            defaults=types.MappingProxyType(resolved_defaults),
            annotations=types.MappingProxyType({k: hints.get(k, Any) for k in builder_defaults}),
            check=check,
            demo_accuracy=demo_accuracy,
            weights=types.MappingProxyType(dict(weights)) if weights else None,
        )
        return builder

    return decorator


def record_demo_accuracy(name: str, accuracy: Mapping[str, float]) -> None:
    """Attaches measured test accuracy by dataset config to a registered name's card.

    Args:
        name: a registered name.
        accuracy: config -> accuracy in [0, 1] (e.g. `{"vqa": 0.9902}`).

    Raises:
        ValueError: for an unknown name or an accuracy outside [0, 1].
    """
    entry = get_entry(name)
    for config, value in accuracy.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ValueError(f"Demo accuracy {config}={value!r} for {name!r}: expected a fraction in [0, 1].")
    _REGISTRY[name] = dataclasses.replace(entry, demo_accuracy=types.MappingProxyType(dict(accuracy)))


def list_models(pattern: str | None = None) -> list[str]:
    """Returns the registered names, sorted.

    Args:
        pattern: an optional shell-style wildcard (`"cnn_lstm_*"`); None lists all.

    Returns:
        The matching names in alphabetical order.

    Raises:
        TypeError: if `pattern` is neither a string nor None.
    """
    catalog.ensure_loaded()
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    if not isinstance(pattern, str):
        raise TypeError(
            f"list_models(pattern={pattern!r}): expected a wildcard string such as 'cnn_lstm_*' or None, "
            f"got {type(pattern).__name__}."
        )
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_entry(name: str) -> ModelEntry:
    """Returns the registry entry for `name`.

    Raises:
        ValueError: if the name is not registered; the message suggests close names.
    """
    catalog.ensure_loaded()
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=SUGGESTION_CUTOFF)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} `zoo.list_models()` lists the {len(_REGISTRY)} registered names."
        )
    return _REGISTRY[name]


def resolve_hyperparameters(name: str, **overrides) -> dict[str, Any]:
    """Merges overrides into a model's defaults and validates the result.

    An override given as None keeps the default, so unset command-line flags
    can be passed straight through.

    Returns:
        The complete hyperparameter dict the builder will receive.

    Raises:
        ValueError: naming the key, the value received and what is allowed, for
            an unknown key, a value of the wrong type, or an invalid value.
    """
    entry = get_entry(name)
    resolved = dict(entry.defaults)
    for key, value in overrides.items():
        if key not in entry.defaults:
            close = difflib.get_close_matches(key, list(entry.defaults), n=1, cutoff=SUGGESTION_CUTOFF)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"Unknown hyperparameter {key!r}={value!r} for model {name!r}.{hint} "
                f"Allowed: {', '.join(sorted(entry.defaults))}."
            )
        if value is None:
            continue
        resolved[key] = coerce_to_annotation(name, key, value, entry.annotations[key])
    if entry.check is not None:
        entry.check(resolved)
    return resolved


def build(name: str, **overrides):
    """Builds the named model as a functional `keras.Model`.

    Args:
        name: a registered name (see `list_models`).
        **overrides: hyperparameters to change; None keeps the default.

    Returns:
        A `keras.Model` (functional API), not compiled.

    Raises:
        ValueError: unknown name (with suggestions), or a bad override, raised
            before any layer is created.
    """
    hyperparameters = resolve_hyperparameters(name, **overrides)
    return get_entry(name).builder(**hyperparameters)


def describe(name: str, **overrides) -> dict[str, Any]:
    """Returns the model card of `name`, computed from the built model.

    The card holds: name, description, origin, modalities, fusion, inputs and
    outputs (name, shape, dtype), hyperparameters, parameters (the model's
    `count_params()`), macs_per_example and demo_accuracy.

    Raises:
        ValueError: as `build`.
    """
    entry = get_entry(name)
    hyperparameters = resolve_hyperparameters(name, **overrides)
    # A copy: callers may edit the card they get.
    built = copy.deepcopy(_built_figures(name, tuple(sorted((k, _hashable(v)) for k, v in hyperparameters.items()))))
    return {
        "name": name,
        "description": entry.description,
        "origin": entry.origin,
        "modalities": list(entry.modalities),
        "fusion": entry.fusion,
        "inputs": list(built["inputs"]),
        "outputs": list(built["outputs"]),
        "hyperparameters": {k: to_json(v) for k, v in hyperparameters.items()},
        "parameters": built["parameters"],
        "macs_per_example": built["macs_per_example"],
        "demo_accuracy": dict(entry.demo_accuracy) if entry.demo_accuracy else None,
        "weights": dict(entry.weights) if entry.weights else None,
    }


def require(condition: bool, key: str, value: Any, allowed: str) -> None:
    """Raises the registry's standard `ValueError` unless `condition` holds.

    Builders' `check` functions use it so every message names the key, the value
    received and what is allowed.
    """
    if not condition:
        raise ValueError(f"Invalid hyperparameter {key}={value!r}: expected {allowed}.")


# --- internals -------------------------------------------------------------


# The figures of a card, not the model they are read from: a cache of built
# models kept every one alive (bert_resnet50_concat alone holds 134 M weights).
@functools.lru_cache(maxsize=256)
def _built_figures(name: str, frozen_hyperparameters) -> dict[str, Any]:
    from zoo.layers.cost import count_macs

    hyperparameters = {k: _thaw(v) for k, v in frozen_hyperparameters}
    model = get_entry(name).builder(**hyperparameters)
    return {
        "inputs": tuple(_tensor_spec(t) for t in model.inputs),
        "outputs": tuple(_tensor_spec(t) for t in _flat_outputs(model)),
        "parameters": int(model.count_params()),
        "macs_per_example": int(count_macs(model)),
    }


def _hashable(value):
    if isinstance(value, list | tuple):
        return ("__seq__", tuple(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("__map__", tuple(sorted((k, _hashable(v)) for k, v in value.items())))
    return value


def _thaw(value):
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__seq__":
        return tuple(_thaw(v) for v in value[1])
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__map__":
        return {k: _thaw(v) for k, v in value[1]}
    return value


def _tensor_spec(tensor) -> dict[str, Any]:
    name = getattr(tensor, "name", None) or ""
    # Keras names a functional output after the layer that made it.
    history = getattr(tensor, "_keras_history", None)
    if history is not None:
        name = history.operation.name
    return {"name": name, "shape": [d for d in tensor.shape], "dtype": str(tensor.dtype)}


def _flat_outputs(model):
    outputs = model.outputs
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]
