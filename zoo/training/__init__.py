"""The training engine: strategy resolution, the distributed loop, checkpoints.

`zoo.training.config` (the options and their defaults) imports no TensorFlow;
the rest loads on first use.

>>> import zoo
>>> result = zoo.train("cnn_lstm_concat_seed", data="vqa", out="runs/vqa", epochs=1, batch_size=64,
...                    train_split="train[:512]", validation_split="validation[:256]", verbose=0)
>>> sorted(result.metrics)
['accuracy', 'learning_rate', 'loss', 'val_accuracy', 'val_loss']
"""

import importlib

from zoo.training.config import KINDS, TrainConfig

# name -> module that defines it; TensorFlow loads with the first of them used.
_LAZY = {
    "train": "zoo.training.loop",
    "TrainResult": "zoo.training.loop",
    "Preempted": "zoo.training.loop",
    "EXAMPLE_ID": "zoo.training.loop",
    "PREEMPTED_EXIT_CODE": "zoo.training.loop",
    "resolve_strategy": "zoo.training.strategy",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.training' has no attribute {name!r}")


__all__ = ["TrainConfig", "KINDS", *_LAZY]
