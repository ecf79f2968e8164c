"""TensorFlow's CPU thread pools for a training run: the measured fast default.

A training step of a model with a recurrent text tower runs hundreds of
small ops per step (the LSTM's forward and backward over each position, the
optimizer's per-variable updates). On a small CPU host, splitting each of
them over TensorFlow's intra-op pool costs more than it gains; running them
whole, two at a time on the inter-op pool, is faster. Measured on a 2-core
host (`zoo.train` on synthetic data, batch 128, 60 steps, examples/s, intra-op
threads 1 vs TensorFlow's default): `cnn_lstm_concat_seed` 3,330 vs 2,699,
`cnn_lstm_film` 3,055 vs 2,446, `rnn_text` 3,772 vs 2,661,
`cnn_audio_lstm_concat` 1,825–1,926 vs 1,564–1,676. Convolution-only models
lose (`resnet_image` 2,866 vs 3,603, `melcnn_audio` 3,284 vs 3,787) and
transformer text towers are even (5,545 vs 5,709), so they keep the default.

TensorFlow fixes its pools when it first runs anything, so the setting
applies only when `zoo.train` is the process's first TensorFlow work, as
under `zoo train`.
"""

from __future__ import annotations

import logging
import os

import tensorflow as tf

from zoo.training.config import MEASURED_MAX_CORES, TrainConfig
from zoo.training.steps import has_recurrent_layers

__all__ = ["choose_intra_op_threads", "apply_thread_settings", "cpu_cores", "MEASURED_MAX_CORES"]

log = logging.getLogger(__name__)

_ENV_VARIABLE = "TF_NUM_INTRAOP_THREADS"


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_intra_op_threads(model, config: TrainConfig) -> int | None:
    """The intra-op thread count a run should use.

    Args:
        model: what `zoo.train` was given (a registered name, a callable or a
            Keras model).
        config: the run's options; an explicit `intra_op_threads` wins (0 =
            TensorFlow's default).

    Returns:
        A thread count to set, or None to leave TensorFlow's choice: for
        models other than registered ones with a recurrent text tower, on a
        GPU or TPU, on hosts with more than `MEASURED_MAX_CORES` cores, and
        when the user set `TF_NUM_INTRAOP_THREADS`.
    """
    if config.intra_op_threads is not None:
        return config.intra_op_threads or None
    if not isinstance(model, str) or os.environ.get(_ENV_VARIABLE):
        return None
    if not has_recurrent_layers(model):
        return None
    if config.strategy == "tpu" or cpu_cores() > MEASURED_MAX_CORES:
        return None
    if tf.config.list_physical_devices("GPU"):
        return None
    return 1


def apply_thread_settings(model, config: TrainConfig) -> None:
    """Sets TensorFlow's intra-op pool for the run, before any TensorFlow work.

    Args:
        model: what `zoo.train` was given.
        config: the run's options.

    Raises:
        ValueError: `intra_op_threads` was given explicitly but TensorFlow has
            already started with another count in this process.
    """
    threads = choose_intra_op_threads(model, config)
    if threads is None or tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        if config.intra_op_threads is not None:
            raise ValueError(
                f"intra_op_threads={config.intra_op_threads!r} cannot take effect: TensorFlow already started "
                "in this process with "
                f"{tf.config.threading.get_intra_op_parallelism_threads() or 'its default'} intra-op threads. "
                "Call zoo.train before any other TensorFlow work, or set TF_NUM_INTRAOP_THREADS before "
                "starting Python."
            ) from None
        log.info(
            "TensorFlow started before zoo.train, so its intra-op threads stay at the default; "
            "%d is faster for %s on this host (run `zoo train`, or call zoo.train first).",
            threads,
            model,
        )
