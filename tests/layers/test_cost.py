"""The MAC counter: catalog figures, hand counts, and refusal of layers it cannot count."""

import keras
import pytest

import zoo
from zoo.layers.cost import attention_macs, count_macs

# Multiply-adds per example in millions, as first counted (hand-checked against
# the seed architectures); the README's catalog table is generated from the counter.
KNOWN_MACS = {
    "cnn_seed": 2.63, "lstm_seed": 8.39, "cnn_lstm_concat_seed": 11.02, "cnn_lstm_concat": 11.05,
    "cnn_lstm_wsum_fixed": 11.04, "cnn_lstm_wsum_learned": 11.04, "cnn_lstm_gated": 11.10, "cnn_lstm_film": 11.05,
    "cnn_lstm_xattn": 12.49, "cnn_lstm_late": 11.05, "cnn_lstm_multitask": 11.09, "cnn_lstm_captioner": 16.57,
    "cnn_image": 2.65, "resnet_image": 6.87, "rnn_text": 8.41, "transformer_text": 2.37,
}


@pytest.mark.slow
def test_every_registered_model_is_counted_and_keeps_its_known_figure():
    for name in zoo.list_models():
        macs = zoo.describe(name)["macs_per_example"]
        assert macs > 0, f"{name}: {macs} MACs"
        if name in KNOWN_MACS:
            assert round(macs / 1e6, 2) == KNOWN_MACS[name], f"{name}: {macs / 1e6:.2f} M, known {KNOWN_MACS[name]} M"


class _Scale(keras.layers.Layer):
    """A custom layer with a weight and no `count_macs`."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


class _CountedScale(_Scale):
    def count_macs(self, input_shape) -> int:
        return 3 * input_shape[-1]


def _model(*layers, shape=(5,)):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def test_unknown_layer_with_weights_is_refused_with_how_to_fix():
    model = _model(_Scale(name="my_scale"), keras.layers.Dense(2))
    with pytest.raises(ValueError, match=r"'my_scale' of class .*_Scale .*count_macs\(self, input_shape\)"):
        count_macs(model)


@pytest.mark.parametrize(
    "layer",
    [keras.layers.Lambda(lambda x: x * 2.0), type("MyDropout", (keras.layers.Dropout,), {})(0.5)],
    ids=["lambda", "subclass_of_zero_cost_layer"],
)
def test_layers_of_unknown_cost_without_weights_are_refused_too(layer):
    with pytest.raises(ValueError, match="no known multiply-add count"):
        count_macs(_model(layer))


def test_custom_layer_with_count_macs_is_counted():
    model = _model(_CountedScale(), keras.layers.Dropout(0.5), keras.layers.Dense(2))
    assert count_macs(model) == 3 * 5 + 5 * 2


def test_hand_counts_of_keras_layers():
    conv = _model(keras.layers.Conv1D(4, 3), keras.layers.Bidirectional(keras.layers.LSTM(6)), shape=(10, 2))
    # Conv1D: 8 output steps * kernel 3 * 2 in * 4 filters; each LSTM direction: 8 steps * 4 gates * (4 + 6) * 6.
    assert count_macs(conv) == 8 * 3 * 2 * 4 + 2 * 8 * 4 * (4 + 6) * 6

    query, value = keras.Input((4, 8)), keras.Input((6, 3))
    attention = keras.Model([query, value], keras.layers.MultiHeadAttention(2, 5)(query, value))
    assert count_macs(attention) == attention_macs(4, 6, 8, 3, 2, 5)


def test_a_nested_model_is_counted_per_call():
    inner = _model(keras.layers.Dense(3), shape=(5,))
    inputs = keras.Input((5,))
    outer = keras.Model(inputs, keras.layers.Add()([inner(inputs), inner(inputs)]))
    assert count_macs(outer) == 2 * 5 * 3


def test_a_model_without_a_layer_graph_is_refused():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(keras.ops.ones((1, 5)))
    with pytest.raises(ValueError, match="'subclassed'.*no layer graph"):
        count_macs(model)


def test_a_kerashub_backbone_is_counted_at_the_length_it_is_called_with():
    """BERT built for any length (its graph says None) is counted at the model's 32 tokens, by hand:
    per layer, projections 4 x 32 x 128 x 128, scores and mixing 2 x 32 x 32 x 128, feed-forward
    2 x 32 x 128 x 512; then the pooler 128 x 128 on [CLS]."""
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=128,
                                             intermediate_dim=512, max_sequence_length=64)
    per_layer = 4 * 32 * 128 * 128 + 2 * 32 * 32 * 128 + 2 * 32 * 128 * 512
    shapes = {name: (None, 32) for name in ("token_ids", "padding_mask", "segment_ids")}
    assert count_macs(backbone, shapes) == 2 * per_layer + 128 * 128
    inputs = {name: keras.Input((32,), dtype="int32", name=name) for name in shapes}
    wrapped = keras.Model(inputs, backbone(inputs)["pooled_output"])
    assert count_macs(wrapped) == 2 * per_layer + 128 * 128


def test_kerashub_clip_encoders_are_counted_by_hand():
    """CLIP's vision encoder: the patch convolution (4 patches of 4x4x3 pixels to 16 channels), then one block
    over 5 tokens (the patches and the class token); its text encoder one block over the 6 tokens it is called with."""
    keras_hub = pytest.importorskip("keras_hub")
    vision = keras_hub.models.CLIPVisionEncoder(patch_size=4, hidden_dim=16, num_layers=1, num_heads=2,
                                                intermediate_dim=32, image_shape=(8, 8, 3))
    text = keras_hub.models.CLIPTextEncoder(vocabulary_size=20, embedding_dim=16, hidden_dim=16, num_layers=1,
                                            num_heads=2, intermediate_dim=32, max_sequence_length=10)

    def block(length):
        return 4 * length * 16 * 16 + 2 * length * length * 16 + 2 * length * 16 * 32

    assert count_macs(vision) == 4 * (4 * 4 * 3) * 16 + block(5)
    assert count_macs(text, {"token_ids": (None, 6)}) == block(6)
