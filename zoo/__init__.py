"""zoo: named multimodal (image + text) Keras models, built in one call.

>>> import zoo
>>> zoo.list_models("cnn_lstm_*")
>>> model = zoo.build("cnn_lstm_concat", vocab_size=2000)
>>> card = zoo.describe("cnn_lstm_concat")
"""

import importlib

# Keras picks its backend at first import; the zoo's training, data and export
# code is TensorFlow, so default to it unless the user chose another.
import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from zoo import data  # noqa: E402  (registers the mnist_text TFDS builder)
from zoo.registry import build, describe, list_models, register_model  # noqa: E402

__version__ = "0.1.0"

# Heavier entry points load on first use, so `import zoo` and the CLI stay fast.
_LAZY = {
    "train": ("zoo.training", "train"),
    "export": ("zoo.export", "export"),
}


def __getattr__(name):
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(module_name), attribute)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = ["data", "build", "describe", "list_models", "register_model", "__version__", *_LAZY]
