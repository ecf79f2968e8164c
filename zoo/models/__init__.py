"""The catalog: importing this package registers every named model."""

from zoo.models import cnn_lstm, unimodal
from zoo.models.analysis import attention_scores
from zoo.models.common import loss_for

__all__ = ["attention_scores", "cnn_lstm", "loss_for", "unimodal"]
