"""Every registered model: builds, runs, trains a step, round-trips, and ignores padding."""

import keras
import numpy as np
import pytest

import zoo
from zoo.testing import random_inputs, run_model_test, small_overrides

ALL = zoo.list_models()
TEXT_MODELS = [name for name in ALL if "text" in zoo.registry.get_entry(name).modalities]


# The seed models and one image and one audio tower stand for the catalog in
# the default run; every model runs with the slow tests (a recurrent, fused
# or backbone model takes 6-18 s here on a 2-core CPU, mostly tracing).
DEFAULT_RUN = {"cnn_seed", "lstm_seed", "cnn_lstm_concat_seed", "cnn_image", "melcnn_audio"}


@pytest.mark.parametrize(
    "name", [name if name in DEFAULT_RUN else pytest.param(name, marks=pytest.mark.slow) for name in ALL]
)
def test_builds_trains_and_round_trips(name):
    overrides = small_overrides(name)
    model = zoo.build(name, **overrides)
    run_model_test(model, batch_size=4)
    assert zoo.describe(name, **overrides)["parameters"] == model.count_params()


@pytest.mark.parametrize("name", ALL)
def test_every_layer_is_named_by_its_part(name):
    model = zoo.build(name, **small_overrides(name))
    parts = ("image", "text", "audio", "fusion", "head", "token_ids", "padding_mask", "segment_ids",
             *[t for t, _ in dict(zoo.describe(name)["hyperparameters"]).get("tasks", ())])
    for layer in model.layers:
        assert layer.name.startswith(parts), f"{name}: layer {layer.name!r} is not prefixed by its tower"


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_padding_does_not_change_outputs(name):
    """The same words padded to 8 or to 13 tokens give the same output."""
    short = zoo.build(name, max_length=8, **small_overrides(name))
    long = zoo.build(name, max_length=13, **small_overrides(name))
    long.set_weights(short.get_weights())
    inputs = random_inputs(short, batch_size=3, seed=1)
    # Every per-token input (token ids, and a KerasHub backbone's padding mask
    # and segment ids) is padded with zeros, which all of them read as padding.
    per_token = {"token_ids", "padding_mask", "segment_ids"}
    padded = {key: np.pad(value, ((0, 0), (0, 5))) if key in per_token else value for key, value in inputs.items()}
    expected = short(inputs, training=False)
    actual = long(padded, training=False)
    for a, e in zip(_leaves(actual), _leaves(expected), strict=True):
        # Per-position outputs (decoders) have extra positions for the extra padding.
        np.testing.assert_allclose(a[:, : e.shape[1]] if a.ndim == 3 else a, e, atol=1e-5)


def _leaves(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    return [np.asarray(outputs)]


def test_seed_models_are_exactly_the_seed_architectures():
    cnn = zoo.build("cnn_seed")
    assert [layer.__class__.__name__ for layer in cnn.layers] == [
        "InputLayer", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert cnn.count_params() == 225_034
    lstm = zoo.build("lstm_seed", vocab_size=1000)
    assert [layer.__class__.__name__ for layer in lstm.layers] == [
        "InputLayer", "Embedding", "PackedLSTM", "PackedLSTM", "Dense"]
    assert all(isinstance(layer, keras.layers.LSTM) for layer in lstm.layers[2:4]), "a Keras LSTM, padding skipped"
    concat = zoo.build("cnn_lstm_concat_seed")
    assert concat.get_layer("fusion_concat").output.shape == (None, 256)
    assert concat.get_layer("head_probabilities").input.shape == (None, 256)


def test_multitask_outputs_named_heads():
    model = zoo.build("cnn_lstm_multitask", tasks=(("digit", 10), ("parity", 2), ("big", 2)))
    assert set(model.output) == {"digit", "parity", "big"}
    with pytest.raises(ValueError, match="tasks="):
        zoo.build("cnn_lstm_multitask", tasks=(("digit", 10), ("digit", 2)))


@pytest.mark.parametrize(
    "task, activation, loss",
    [("classification", "softmax", "sparse_categorical_crossentropy"), ("multilabel", "sigmoid", "binary_crossentropy"),
     ("regression", "linear", "mean_squared_error")],
)
def test_each_head_has_its_activation_and_loss(task, activation, loss):
    model = zoo.build("cnn_lstm_concat", task=task, num_classes=3)
    assert model.layers[-1].get_config()["activation"] == activation
    assert zoo.models.loss_for(task) == loss


def test_attention_scores_for_plotting():
    model = zoo.build("cnn_lstm_xattn", max_length=6, vocab_size=20)
    inputs = random_inputs(model, batch_size=2)
    scores = zoo.models.attention_scores(model, inputs)
    assert scores.shape == (2, 8, 6, 25)
    real_words = (inputs["token_ids"] != 0)[:, None, :].repeat(8, axis=1)
    np.testing.assert_allclose(scores.sum(-1)[real_words], 1.0, rtol=1e-5)
    np.testing.assert_allclose(scores.sum(-1)[~real_words], 0.0)
    with pytest.raises(ValueError, match="CrossModalAttention"):
        zoo.models.attention_scores(zoo.build("cnn_seed"), {})


def test_learned_weighted_sum_weights_are_a_distribution():
    model = zoo.build("cnn_lstm_wsum_learned")
    weights = np.asarray(model.get_layer("fusion_weighted_sum").mixing_weights())
    np.testing.assert_allclose(weights, [0.5, 0.5])


def test_other_backends_build_same_graph():
    """Builders use keras.layers/keras.ops only; nothing TensorFlow-specific is imported by them.

    The one exception is a TensorFlow kernel (`*_tf.py`) that a layer loads
    inside its call, on the TensorFlow backend only.
    """
    import ast
    import pathlib

    root = pathlib.Path(zoo.__file__).parent
    for folder in ("layers", "towers", "models"):
        for path in (root / folder).glob("*.py"):
            tree = ast.parse(path.read_text())
            top_level = {id(node) for node in tree.body}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    kernels = [a.name for a in node.names if a.name.endswith("_tf")]
                    if id(node) in top_level:
                        assert not kernels, f"{path} imports the TensorFlow kernel {kernels} at module level"
                    if path.stem.endswith("_tf"):
                        continue
                    assert not any(n.split(".")[0] == "tensorflow" for n in names), f"{path} imports tensorflow"


def test_captioner_learns_to_describe_and_generation_stops_at_end():
    """On two fixed images with two fixed captions, training makes greedy decoding reproduce them."""
    model = zoo.build("cnn_lstm_captioner", vocab_size=6, max_length=4, embed_dim=16, rnn_units=(16,),
                      attention_dim=16, num_heads=2, conv_filters=(4, 8), image_units=8)
    images = np.zeros((2, 28, 28, 1), "float32")
    images[1, 10:20, 10:20] = 1.0
    captions = np.array([[2, 3, 0, 0], [4, 5, 2, 0]], "int32")
    inputs, targets = zoo.models.teacher_forcing(captions, vocab_size=6)
    assert inputs[0].tolist() == [6, 2, 3, 0]
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    for _ in range(150):
        model.train_on_batch({"image": images, "token_ids": inputs}, targets)
    vocabulary = ["", "[UNK]", "a", "b", "c", "d"]
    assert zoo.models.generate_captions(model, images, vocabulary) == ["a b", "c d a"]


def test_captioner_cannot_be_bidirectional():
    with pytest.raises(ValueError, match="bidirectional=True: expected False"):
        zoo.build("cnn_lstm_captioner", bidirectional=True)


def test_the_default_runs_catalog_sample_names_registered_models():
    assert DEFAULT_RUN <= set(ALL), sorted(DEFAULT_RUN - set(ALL))
