"""The training engine: strategy resolution, the distributed loop, checkpoints.

Modules: `run` (the `train` entry point), `steps` (build, compile, the
distributed step), `inputs` (data configs and datasets), `state` (counters,
resume, early stopping, stop signals), `display` (progress bar, TensorBoard),
`profiling` (a profile of a range of steps),
`runfiles` (write order, `verify_run`), `runlock` (one writer per run folder),
`overrides` (`data_overrides`), `checkpoints`, `strategy`, `config`.

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
    "train": "zoo.training.run",
    "TrainResult": "zoo.training.run",
    "Preempted": "zoo.training.state",
    "Interrupted": "zoo.training.state",
    "EXAMPLE_ID": "zoo.training.run",
    "PREEMPTED_EXIT_CODE": "zoo.training.run",
    "resolve_strategy": "zoo.training.strategy",
    "data_overrides": "zoo.training.overrides",
    "verify_run": "zoo.training.runfiles",
    "RunIncomplete": "zoo.training.runfiles",
    "RunLocked": "zoo.training.runlock",
    "shared_lock": "zoo.training.runlock",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.training' has no attribute {name!r}")


__all__ = ["TrainConfig", "KINDS", *_LAZY]
