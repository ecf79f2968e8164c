"""Measured demo accuracy of the catalog, shown on the model cards (`zoo describe`).

Test-split accuracy, mean of 3 seeds, from `make demo-full` (= `zoo demo --full
--seeds 3`, grid `full`) measured on 2026-11-23 on a 2-core CPU machine,
TensorFlow 2.21.0, Keras 3.15.1: the tables of the README's demo section, which
give the standard deviations, macro F1 and training times. Models are trained
with the demo's settings (its recipes and epochs, and its small text tower for
`rnn_text` and the zoo's fusion models), not with their catalog defaults. The
`digits` figure of `cnn_seed` is its `zoo+augment` recipe row.
"""

# The builders register their names on import; the cards are annotated after.
from zoo.models import captioning, cnn_lstm, unimodal  # noqa: F401
from zoo.registry import record_demo_accuracy

DEMO_ACCURACY = {
    "cnn_image": {"vqa": 0.3785, "caption": 0.8908},
    "rnn_text": {"vqa": 0.4062, "caption": 0.5543},
    "cnn_seed": {"digits": 0.9946},
    "cnn_lstm_concat_seed": {"vqa": 0.6253, "caption": 0.9546},
    "cnn_lstm_concat": {"vqa": 0.9692, "caption": 0.9550},
    "cnn_lstm_wsum_fixed": {"vqa": 0.9814, "caption": 0.9543},
    "cnn_lstm_wsum_learned": {"vqa": 0.9683, "caption": 0.9552},
    "cnn_lstm_gated": {"vqa": 0.9902, "caption": 0.9553},
    "cnn_lstm_film": {"vqa": 0.9835, "caption": 0.9527},
    "cnn_lstm_xattn": {"vqa": 0.9092, "caption": 0.8919},
    "cnn_lstm_late": {"vqa": 0.6259, "caption": 0.9538},
    "cnn_lstm_multitask": {"vqa": 0.9632, "caption": 0.9537},
}

for _name, _accuracy in DEMO_ACCURACY.items():
    record_demo_accuracy(_name, _accuracy)
