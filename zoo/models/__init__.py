"""The catalog: importing this package registers every named model."""

from zoo.models import captioning, cnn_lstm, unimodal
from zoo.models.analysis import attention_scores
from zoo.models.captioning import generate_captions, teacher_forcing
from zoo.models.common import loss_for

__all__ = [
    "attention_scores", "captioning", "cnn_lstm", "generate_captions", "loss_for", "teacher_forcing", "unimodal",
]
