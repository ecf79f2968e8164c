"""zoo: named multimodal (image + text) Keras models, built in one call.

`import zoo` makes every model, layer and other serializable object of the
zoo known to Keras, so `keras.models.load_model` opens any saved zoo model.
It does so the moment Keras is imported (at once, if Keras already is), so
`import zoo` alone costs nothing: the `zoo` command answers `--help` without
loading Keras or TensorFlow. The builders use `keras.layers` and `keras.ops`
only, so they work on the JAX and PyTorch backends too; the TensorFlow parts
(`zoo.data`, `zoo.datasets`, `zoo.training`, `zoo.export`) load when first used.

>>> import zoo
>>> zoo.list_models("cnn_lstm_concat*")
['cnn_lstm_concat', 'cnn_lstm_concat_seed']
>>> model = zoo.build("cnn_lstm_concat", vocab_size=2000)
>>> model.name
'cnn_lstm_concat'
"""

import importlib
import importlib.util
import os as _os

import wrapt as _wrapt

from zoo.core import catalog as _catalog
from zoo.core.version import __version__

# Keras picks its backend at first import. The zoo's training, data and export
# code is TensorFlow, so default to it where it is installed, unless the user
# chose another backend.
if importlib.util.find_spec("tensorflow") is not None:
    _os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _load_catalog():
    importlib.import_module("zoo.layers")
    importlib.import_module("zoo.models")


_catalog.set_loader(_load_catalog)


@_wrapt.when_imported("keras")
def _register_with_keras(_keras_module):
    # Keras' own import (by the user, by a zoo module or already done) is the
    # one moment registration needs: nothing can deserialize before it.
    _catalog.ensure_loaded()


# Modules and functions that load on first use.
_LAZY_MODULES = ("core", "registry", "layers", "towers", "models", "data", "datasets", "training", "export", "demo", "cli", "testing")
_LAZY_FUNCTIONS = {
    "build": ("zoo.registry", "build"),
    "describe": ("zoo.registry", "describe"),
    "list_models": ("zoo.registry", "list_models"),
    "register_model": ("zoo.registry", "register_model"),
    "train": ("zoo.training", "train"),
    "export_model": ("zoo.export", "export_model"),
}


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"zoo.{name}")
    if name in _LAZY_FUNCTIONS:
        module_name, attribute = _LAZY_FUNCTIONS[name]
        return getattr(importlib.import_module(module_name), attribute)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY_MODULES, *_LAZY_FUNCTIONS})


__all__ = ["build", "describe", "list_models", "register_model", "train", "export_model", "__version__"]
