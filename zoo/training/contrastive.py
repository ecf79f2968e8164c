"""Training steps of contrastive dual encoders: the loss sees the global batch.

A contrastive loss compares every image of a batch with every text, so under
`tf.distribute` each replica must see the other replicas' embeddings too:
computed per replica, the loss would contrast each example with a fraction of
the negatives, and its value would depend on the number of devices. These
steps gather the model outputs and the targets across replicas
(`ReplicaContext.all_gather`, whose gradient sums the upstream gradients and
hands each replica its own slice) and call the compiled loss on the global
batch. Every replica computes the same global loss; Keras divides it by the
number of replicas and the optimizer sums the replicas' gradients, so the
update equals the one-device update on the global batch.

The targets tell the loss which pairs match: the token ids (pairs sharing a
caption) or the labels (pairs sharing a class), as the head asks
(`ContrastiveHead.positives`).
"""

from __future__ import annotations

import tensorflow as tf

from zoo.core import keys

__all__ = ["is_contrastive", "contrastive_loss", "make_train_step", "make_test_step"]


def is_contrastive(model) -> bool:
    """Whether `model` ends in a `ContrastiveHead` (a dual encoder)."""
    from zoo.layers import ContrastiveHead

    return bool(model.layers) and isinstance(model.layers[-1], ContrastiveHead)


def contrastive_loss(model):
    """The `ContrastiveLoss` matching a dual encoder's head."""
    from zoo.layers import ContrastiveLoss

    return ContrastiveLoss(**model.layers[-1].loss_config())


def _targets(model, features, label):
    if model.layers[-1].positives == "caption":
        return features[keys.TOKEN_IDS]
    return label


def _gather(value):
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    gathered = context.all_gather(value, axis=0)
    # The gather loses the static shape; the loss reads the embedding width from it.
    return tf.ensure_shape(gathered, [None, *value.shape[1:]])


def _batch_size(features):
    return tf.shape(next(iter(features.values())))[0]


def make_train_step(model):
    """Returns `step(data)` for `strategy.run`: forward, gathered loss, gradients, update.

    Mirrors Keras' TensorFlow `train_step`, with the outputs and targets
    gathered across replicas before the loss.
    """
    from keras.src.losses import loss as loss_module

    def step(data):
        features, label = data[0], data[1]
        with tf.GradientTape() as tape:
            y_pred = _gather(model(features, training=True))
            y_true = _gather(_targets(model, features, label))
            loss = model.compute_loss(x=features, y=y_true, y_pred=y_pred, training=True)
            # Keras keeps its loss tracker private; the loop reports it as "loss".
            model._loss_tracker.update_state(
                loss_module.unscale_loss_for_distribution(loss), sample_weight=_batch_size(features)
            )
            scaled = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_weights)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_weights, strict=True))
        return model.compute_metrics(features, y_true, y_pred)

    return step


def make_test_step(model):
    """Returns `step(data)`: the validation counterpart of `make_train_step` (no update)."""
    from keras.src.losses import loss as loss_module

    def step(data):
        features, label = data[0], data[1]
        y_pred = _gather(model(features, training=False))
        y_true = _gather(_targets(model, features, label))
        loss = model.compute_loss(x=features, y=y_true, y_pred=y_pred, training=False)
        model._loss_tracker.update_state(
            loss_module.unscale_loss_for_distribution(loss), sample_weight=_batch_size(features)
        )
        return model.compute_metrics(features, y_true, y_pred)

    return step
