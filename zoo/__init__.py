"""zoo: named multimodal (image + text) Keras models, built in one call.

`import zoo` registers every model, layer and other serializable object of
the zoo (so `keras.models.load_model` opens any saved zoo model) and imports
no TensorFlow: the builders use `keras.layers` and `keras.ops` only, so they
work on the JAX and PyTorch backends too. The TensorFlow parts (`zoo.data`,
`zoo.datasets`, `zoo.training`, `zoo.export`) load when first used.

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

# Keras picks its backend at first import. The zoo's training, data and export
# code is TensorFlow, so default to it where it is installed, unless the user
# chose another backend.
if importlib.util.find_spec("tensorflow") is not None:
    _os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from zoo import layers, models  # noqa: E402, F401  (registers every serializable object)
from zoo.core.version import __version__  # noqa: E402
from zoo.registry import build, describe, list_models, register_model  # noqa: E402

# TensorFlow-only parts load on first use, so `import zoo` stays backend-agnostic.
_LAZY_MODULES = ("data", "datasets", "training", "export", "demo", "cli", "testing")
_LAZY_FUNCTIONS = {
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
