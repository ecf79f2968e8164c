"""The options of a training run, validated before anything is built."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from zoo.training.profiling import check_profile

__all__ = ["TrainConfig", "KINDS", "OPTIMIZERS", "LR_SCHEDULES", "make_learning_rate", "make_optimizer"]

# tf.distribute strategies `zoo.training.strategy.resolve_strategy` makes; this
# module imports no TensorFlow, so the command line can list them quickly.
KINDS = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "cosine")
# One intra-op thread was measured faster for recurrent models on 2 cores only;
# larger hosts keep TensorFlow's default (see `zoo.training.threads`).
MEASURED_MAX_CORES = 2


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything `zoo.train` needs besides the model and the data.

    Attributes:
        epochs: number of passes over the training data.
        batch_size: examples per replica per step; the global batch is this
            times the number of replicas.
        steps_per_epoch: steps per epoch; None = one pass over the dataset
            (its cardinality must then be known).
        validation_steps: cap on validation steps per epoch; None = the whole
            validation set.
        strategy: a `tf.distribute` kind (see `KINDS`).
        optimizer: one of `OPTIMIZERS`.
        learning_rate: peak learning rate.
        lr_schedule: `constant`, or `cosine` decay to `min_lr_fraction` times
            the peak over the whole run.
        warmup_steps: linear warm-up from 0 (cosine schedule only).
        min_lr_fraction: final learning rate of the cosine schedule, as a
            fraction of the peak.
        early_stopping_patience: stop after this many epochs without
            improvement of `monitor`; None disables early stopping.
        monitor: metric watched by early stopping (`val_loss`, `val_accuracy`,
            `loss`, ...); losses are minimized, anything else maximized.
        min_delta: smallest change of `monitor` that counts as improvement.
        checkpoint_every: save a checkpoint every this many steps (and at each
            epoch end); 0 = epoch ends only.
        keep_checkpoints: how many recent checkpoints to keep.
        seed: seeds Python, NumPy, TensorFlow and Keras; None = unseeded.
        deterministic: enable TensorFlow op determinism (bit-identical runs);
            None = on exactly when a seed is given.
        mixed_precision: compute in float16 (GPU) or bfloat16 (CPU, TPU) with
            float32 variables.
        jit: compile the training step with XLA.
        steps_per_execution: training steps per `tf.function` call.
        verbose: 0 = silent, 1 = progress bar (one line per epoch when the
            output is not a terminal).
        freeze: towers to freeze, by top-level layer name (`text_backbone`)
            or tower prefix (`text`, `image`); see `zoo.training.finetune`.
        unfreeze_epoch: the 0-based epoch from which the frozen towers train;
            None keeps them frozen for the whole run.
        backbone_lr_multiplier: learning-rate factor for the towers once
            unfrozen (the standard transfer-learning recipe uses 0.1 or less).
        profile: `(start, stop)` global steps to trace with TensorFlow's
            profiler into `OUT/logs/train` (see `zoo.training.profiling`);
            None = no profile. Checked against the run's planned steps.
        intra_op_threads: TensorFlow's intra-op CPU threads; None = the
            measured fast choice for the model and host (see
            `zoo.training.threads`), 0 = TensorFlow's default. It takes effect
            only when `zoo.train` is the process's first TensorFlow work.
    """

    epochs: int = 1
    batch_size: int = 32
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    strategy: str = "auto"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_fraction: float = 0.0
    early_stopping_patience: int | None = None
    monitor: str = "val_loss"
    min_delta: float = 0.0
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    seed: int | None = None
    deterministic: bool | None = None
    mixed_precision: bool = False
    jit: bool = False
    steps_per_execution: int = 1
    verbose: int = 1
    freeze: tuple[str, ...] = ()
    unfreeze_epoch: int | None = None
    backbone_lr_multiplier: float = 1.0
    profile: tuple[int, int] | None = None
    intra_op_threads: int | None = None

    def __post_init__(self):
        _int("epochs", self.epochs, minimum=1)
        _int("batch_size", self.batch_size, minimum=1)
        _int("steps_per_epoch", self.steps_per_epoch, minimum=1, optional=True)
        _int("validation_steps", self.validation_steps, minimum=1, optional=True)
        _choice("strategy", self.strategy, KINDS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _float("learning_rate", self.learning_rate, positive=True)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _int("warmup_steps", self.warmup_steps, minimum=0)
        if self.warmup_steps and self.lr_schedule != "cosine":
            raise ValueError(
                f"warmup_steps={self.warmup_steps!r} needs lr_schedule='cosine' "
                f"(got lr_schedule={self.lr_schedule!r})."
            )
        _float("min_lr_fraction", self.min_lr_fraction)
        if not 0.0 <= self.min_lr_fraction <= 1.0:
            raise ValueError(f"min_lr_fraction={self.min_lr_fraction!r}: expected a value in [0, 1].")
        _int("early_stopping_patience", self.early_stopping_patience, minimum=0, optional=True)
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ValueError(f"monitor={self.monitor!r}: expected a metric name such as 'val_loss'.")
        _float("min_delta", self.min_delta)
        if self.min_delta < 0:
            raise ValueError(f"min_delta={self.min_delta!r}: expected a value >= 0.")
        _int("checkpoint_every", self.checkpoint_every, minimum=0)
        _int("keep_checkpoints", self.keep_checkpoints, minimum=1)
        _int("seed", self.seed, minimum=0, optional=True)
        _bool("deterministic", self.deterministic, optional=True)
        _bool("mixed_precision", self.mixed_precision)
        _bool("jit", self.jit)
        _int("steps_per_execution", self.steps_per_execution, minimum=1)
        _choice("verbose", self.verbose, (0, 1))
        _int("intra_op_threads", self.intra_op_threads, minimum=0, optional=True)
        self._check_fine_tuning()
        planned = self.epochs * self.steps_per_epoch if self.steps_per_epoch is not None else None
        # A tuple, as for `freeze`: config.json's list reads back equal.
        object.__setattr__(self, "profile", check_profile(self.profile, planned))
        if self.jit and self.op_determinism:
            reason = f"seed={self.seed!r} was given" if self.deterministic is None else "deterministic=True"
            raise ValueError(
                f"jit=True cannot run with op determinism (on because {reason}): XLA has no deterministic "
                "implementation of some gradients (MaxPool's among them) and fails at the first step. "
                "Pass deterministic=False to keep the seed without bit-identical runs, or drop jit."
            )

    def _check_fine_tuning(self) -> None:
        if isinstance(self.freeze, str) or not isinstance(self.freeze, list | tuple) or not all(
            isinstance(name, str) and name for name in self.freeze
        ):
            raise ValueError(f"freeze={self.freeze!r}: expected a sequence of tower names such as ('text_backbone',).")
        # A tuple, so the config stays hashable and reads back equal from config.json's list.
        object.__setattr__(self, "freeze", tuple(self.freeze))
        _int("unfreeze_epoch", self.unfreeze_epoch, minimum=1, optional=True)
        if self.unfreeze_epoch is not None:
            if not self.freeze:
                raise ValueError(f"unfreeze_epoch={self.unfreeze_epoch!r} needs towers to freeze (freeze=...).")
            if self.unfreeze_epoch >= self.epochs:
                raise ValueError(
                    f"unfreeze_epoch={self.unfreeze_epoch!r}: expected an epoch before the last "
                    f"(epochs={self.epochs}), so the towers train at least one epoch."
                )
        _float("backbone_lr_multiplier", self.backbone_lr_multiplier, positive=True)

    @property
    def op_determinism(self) -> bool:
        """Whether op determinism is on: `deterministic`, or whether a seed was given."""
        return self.seed is not None if self.deterministic is None else self.deterministic

    def minimize_monitor(self) -> bool:
        """Whether early stopping wants `monitor` to go down (losses) rather than up."""
        return "loss" in self.monitor

    def to_dict(self) -> dict[str, Any]:
        """Returns the options as a JSON-ready dict."""
        return dataclasses.asdict(self)


def make_learning_rate(config: TrainConfig, total_steps: int):
    """Returns the learning rate (a float or a Keras schedule) for a run of `total_steps`.

    Raises:
        ValueError: if the warm-up is not shorter than the run.
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    import keras

    if config.warmup_steps >= total_steps:
        raise ValueError(
            f"warmup_steps={config.warmup_steps} must be smaller than the run's {total_steps} steps."
        )
    decay_steps = max(1, total_steps - config.warmup_steps)
    if config.warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=decay_steps,
            alpha=config.min_lr_fraction,
            warmup_target=config.learning_rate,
            warmup_steps=config.warmup_steps,
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate, decay_steps=decay_steps, alpha=config.min_lr_fraction
    )


def make_optimizer(config: TrainConfig, total_steps: int):
    """Returns a new Keras optimizer for the run (call it inside `strategy.scope()`)."""
    import keras

    learning_rate = make_learning_rate(config, total_steps)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    return keras.optimizers.RMSprop(learning_rate)


# --- validation helpers ------------------------------------------------------


def _int(name, value, *, minimum=None, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: expected an integer{' or None' if optional else ''}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r}: expected an integer >= {minimum}.")


def _float(name, value, *, positive=False):
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: expected a finite number.")
    if positive and value <= 0:
        raise ValueError(f"{name}={value!r}: expected a number > 0.")


def _bool(name, value, *, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: expected True or False{' or None' if optional else ''}.")


def _choice(name, value, choices):
    if value not in choices or (isinstance(value, bool) and not any(c is value for c in choices)):
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(repr(c) for c in choices)}.")
