"""The catalog: importing this package registers every named model."""

from zoo.models import audio, captioning, catalog, cnn_lstm, demo_results, dual_encoder, pretrained, unimodal
from zoo.models.analysis import attention_scores
from zoo.models.captioning import generate_captions, teacher_forcing
from zoo.models.common import loss_for

__all__ = [
    "attention_scores", "audio", "captioning", "catalog", "cnn_lstm", "demo_results", "generate_captions", "loss_for", "pretrained", "teacher_forcing",
    "unimodal",
]
