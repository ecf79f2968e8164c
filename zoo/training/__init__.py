"""The training engine: strategy resolution, the distributed loop, checkpoints.

>>> import zoo
>>> result = zoo.train("cnn_lstm_concat_seed", data="vqa", out="runs/vqa", epochs=2, batch_size=64)
>>> sorted(result.metrics)
['accuracy', 'learning_rate', 'loss', 'val_accuracy', 'val_loss']
"""

from zoo.training.config import TrainConfig
from zoo.training.loop import EXAMPLE_ID, PREEMPTED_EXIT_CODE, Preempted, TrainResult, train
from zoo.training.strategy import KINDS, resolve_strategy

__all__ = [
    "train",
    "resolve_strategy",
    "TrainConfig",
    "TrainResult",
    "Preempted",
    "EXAMPLE_ID",
    "PREEMPTED_EXIT_CODE",
    "KINDS",
]
