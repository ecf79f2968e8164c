"""Transfer learning in the loop: frozen towers, unfrozen at an epoch with a smaller learning rate.

The recipe (`TrainConfig.freeze`, `unfreeze_epoch`, `backbone_lr_multiplier`):
the named towers are frozen for the first epochs, so only the new fusion and
head layers learn on top of the pretrained features; from `unfreeze_epoch` on
the towers train too, at `backbone_lr_multiplier` times the learning rate, so
the pretrained weights move less than the new layers.

How it fits the loop:

* a tower is a top-level layer of the model (`text_backbone`) or a tower
  prefix (`text` = every layer named `text_...`); unknown names are refused
  when the model is built, before any step;
* the optimizer gets its slots for every variable that will ever train
  before the first step, so checkpoints have one structure on both sides of
  the unfreeze epoch and a run killed anywhere resumes exactly (the epoch
  read from the checkpoint decides which towers are frozen); towers that
  never unfreeze get no slots;
* a frozen tower is `trainable = False`, so its batch normalisation runs in
  inference mode (Keras 3's rule) and its moving statistics stay as loaded;
* the training function is traced again after a change, since a traced step
  keeps the variable list it was traced with.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FineTune", "tower_layers", "make_fine_tune"]


def tower_layers(model, names: Sequence[str]) -> list:
    """The top-level layers of `model` that `names` select.

    Args:
        model: a functional `keras.Model`.
        names: layer names (`text_backbone`) or tower prefixes (`text`, `image`).

    Returns:
        The selected layers, in model order, each once.

    Raises:
        ValueError: a name that selects no layer with trainable weights; the
            message lists the names that would.
    """
    candidates = [layer for layer in model.layers if layer.weights]
    selected = []
    for name in names:
        matches = [layer for layer in candidates if layer.name == name or layer.name.startswith(name + "_")]
        if not matches:
            prefixes = sorted({layer.name.split("_")[0] for layer in candidates})
            raise ValueError(
                f"freeze={name!r} names no tower of model {model.name!r}; expected a layer name among "
                f"{[layer.name for layer in candidates]} or a tower prefix among {prefixes}."
            )
        selected += [layer for layer in matches if layer not in selected]
    return selected


class FineTune:
    """Freezes and unfreezes towers of one model by epoch, with a learning-rate multiplier.

    Args:
        model: the model being trained.
        freeze: tower names (see `tower_layers`).
        unfreeze_epoch: the first epoch (0-based) in which the towers train;
            None keeps them frozen.
        multiplier: learning-rate factor for the towers' variables once they train.
    """

    def __init__(self, model, freeze: Sequence[str], unfreeze_epoch: int | None, multiplier: float):
        self.model = model
        self.layers = tower_layers(model, freeze)
        self.unfreeze_epoch = unfreeze_epoch
        self.multiplier = float(multiplier)
        self.frozen: bool | None = None

    def before_optimizer_build(self) -> None:
        """Leaves trainable exactly what will ever train, so the optimizer makes slots for those only."""
        for layer in self.layers:
            layer.trainable = self.unfreeze_epoch is not None
        self.frozen = self.unfreeze_epoch is None

    def install(self, optimizer) -> None:
        """Scales the towers' learning rate in `optimizer` (built) by the multiplier."""
        if self.multiplier == 1.0 or self.unfreeze_epoch is None:
            return
        inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's own optimizer
        indices = {inner._get_variable_index(v) for layer in self.layers for v in layer.trainable_weights}
        original = inner.update_step
        multiplier = self.multiplier

        # Keras optimizers have one learning rate; the update of each variable
        # goes through `update_step`, which is where a per-tower rate can act.
        def update_step(gradient, variable, learning_rate):
            if inner._get_variable_index(variable) in indices:
                learning_rate = learning_rate * multiplier
            return original(gradient, variable, learning_rate)

        inner.update_step = update_step

    def set_epoch(self, epoch: int) -> bool:
        """Freezes or unfreezes the towers for `epoch`; returns whether trainability changed."""
        frozen = self.unfreeze_epoch is None or epoch < self.unfreeze_epoch
        if frozen == self.frozen:
            return False
        for layer in self.layers:
            layer.trainable = not frozen
        self.frozen = frozen
        return True


def make_fine_tune(model, config) -> FineTune | None:
    """A `FineTune` for a run's config, or None when it freezes nothing.

    Raises:
        ValueError: a tower name the model does not have.
    """
    if not config.freeze:
        return None
    return FineTune(model, config.freeze, config.unfreeze_epoch, config.backbone_lr_multiplier)
