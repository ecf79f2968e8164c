"""What a run shows: the progress bar on the chief and TensorBoard summaries.

TensorBoard: each process opens new event files (one per writer) in
`logs/train` and `logs/validation`; TensorFlow cannot append to an existing
one, so a resumed run adds one file per writer and attempt, which TensorBoard
reads as one run.
"""

from __future__ import annotations

import os
import sys

import tensorflow as tf

__all__ = ["Display", "summary_writers", "write_summaries"]


class Display:
    """Progress bar on the chief: live on a terminal, one line per epoch otherwise."""

    def __init__(self, enabled: bool, steps_per_epoch: int, epochs: int):
        self.enabled = bool(enabled)
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.interactive = self.enabled and sys.stdout.isatty()
        self.bar = None

    def start_epoch(self, epoch: int, done: int):
        if not self.enabled:
            return
        import keras

        print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self.bar = keras.utils.Progbar(self.steps_per_epoch, verbose=1 if self.interactive else 2)
        if done:
            self.bar.update(done)

    def update(self, done: int, logs):
        if self.bar is not None and self.interactive:
            self.bar.update(done, list(logs.items()) if logs else None)

    def end_epoch(self, done: int, logs):
        if self.bar is not None:
            self.bar.update(done, list(logs.items()), finalize=True)
            self.bar = None


def summary_writers(out: str, is_chief: bool) -> dict:
    """The chief's TensorBoard writers under OUT/logs (none on other workers)."""
    if not is_chief:
        return {}
    logs = os.path.join(out, "logs")
    return {
        "train": tf.summary.create_file_writer(os.path.join(logs, "train")),
        "validation": tf.summary.create_file_writer(os.path.join(logs, "validation")),
    }


def write_summaries(writers: dict, epoch: int, logs: dict[str, float]) -> None:
    """Writes one epoch's metrics: `val_*` to the validation writer, the rest to the training one."""
    if not writers:
        return
    for key, value in logs.items():
        if key.startswith("val_"):
            writer, name = writers["validation"], f"epoch_{key[4:]}"
        else:
            writer, name = writers["train"], f"epoch_{key}"
        with writer.as_default():
            _scalar_summary(name, value, epoch)


def _scalar_summary(name: str, value: float, step: int) -> None:
    # tf.summary.scalar lives in the tensorboard package; this writes the same
    # event (a float32 tensor tagged for the "scalars" plugin) with core TF only.
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=metadata)
