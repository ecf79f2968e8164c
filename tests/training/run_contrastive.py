"""Trains a tiny dual encoder through `zoo.train` on one device or on two mirrored replicas.

Run as a subprocess by test_training_contrastive (the CPU must be split into
two logical devices before TensorFlow starts, and a process holds one
strategy). The global batch is 16: one replica of 16 (`default`) or two of 8
(`mirrored`). Writes OUT/STRATEGY.json with the per-epoch losses and final weights.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    out, strategy, loss, positives = sys.argv[1:5]
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    import numpy as np

    from tests.training import synthetic
    from zoo.training import train

    overrides = {"conv_filters": (4, 8), "image_units": 16, "vocab_size": 50, "max_length": 8, "embed_dim": 8,
                 "rnn_units": (8,), "projection_dim": 8, "loss": loss, "positives": positives}
    batch_size = 16 if strategy == "default" else 8
    trained = train(
        "cnn_lstm_dual_encoder", model_overrides=overrides, out=os.path.join(out, strategy),
        dataset_fn=synthetic.dataset_fn(64, batch_size, shuffle_seed=None), epochs=3, steps_per_epoch=1,
        batch_size=batch_size, strategy=strategy, seed=1, checkpoint_every=0, verbose=0,
    )
    weights = np.concatenate([np.asarray(w).ravel() for w in trained.model.get_weights()])
    result = {"loss": [epoch["loss"] for epoch in trained.history], "weights": weights.tolist()}
    with open(os.path.join(out, f"{strategy}.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
