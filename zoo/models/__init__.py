"""The catalog: importing this package registers every named model."""

from zoo.models import (
    audio,
    captioning,
    catalog,
    cnn_lstm,
    decoding,
    demo_results,
    dual_encoder,
    pretrained,
    retrieval,
    unimodal,
)
from zoo.models.analysis import attention_scores
from zoo.models.caption_metrics import caption_scores
from zoo.models.captioning import generate_captions, teacher_forcing
from zoo.models.common import loss_for
from zoo.models.embeddings import (
    class_embeddings,
    embed_images,
    embed_texts,
    linear_probe,
    zero_shot_classify,
)
from zoo.models.retrieval import retrieval_metrics

__all__ = [
    "attention_scores", "audio", "caption_scores", "captioning", "catalog", "class_embeddings", "cnn_lstm",
    "decoding", "demo_results", "dual_encoder", "embed_images", "embed_texts", "generate_captions", "linear_probe",
    "loss_for", "pretrained", "retrieval", "retrieval_metrics", "teacher_forcing", "unimodal", "zero_shot_classify",
]
