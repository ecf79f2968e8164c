"""The training engine's fast default for recurrent layers: unrolled on a CPU, rolled (cuDNN) on a GPU."""

import keras
import pytest
import tensorflow as tf

from zoo.training import steps


def _lstms(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.LSTM)]


def test_short_texts_unroll_on_a_cpu_and_the_users_choice_wins():
    assert steps.fast_recurrence("cnn_lstm_concat", {"max_length": 16}) == {"max_length": 16, "unroll": True}
    assert steps.fast_recurrence("cnn_lstm_concat", {"unroll": False}) == {"unroll": False}
    long = {"max_length": steps.UNROLL_MAX_LENGTH + 1}
    assert steps.fast_recurrence("cnn_lstm_concat", long) == long
    assert steps.fast_recurrence("cnn_seed", {}) == {}, "a model without recurrent layers has no unroll to set"


def test_on_a_gpu_the_lstm_stays_eligible_for_cudnn(monkeypatch):
    import zoo

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["/GPU:0"] if kind == "GPU" else [])
    overrides = steps.fast_recurrence("cnn_lstm_concat", {"max_length": 16})
    assert "unroll" not in overrides
    model = zoo.build("cnn_lstm_concat", **overrides)
    lstms = _lstms(model)
    assert lstms
    for layer in lstms:
        # Keras runs an LSTM on cuDNN only with this configuration (and right-padded masks, as the zoo's).
        config = layer.get_config()
        assert (config["activation"], config["recurrent_activation"]) == ("tanh", "sigmoid")
        assert config["recurrent_dropout"] == 0 and not config["unroll"] and config["use_bias"]


def test_training_builds_the_unrolled_model_on_this_cpu(tmp_path):
    from tests.training import synthetic
    from zoo.training import train

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU keeps recurrent layers rolled")
    result = train(
        synthetic.TINY_MODEL, dataset_fn=lambda _: synthetic.examples(16).batch(8), out=tmp_path / "run",
        epochs=1, batch_size=8, verbose=0, model_overrides=synthetic.TINY_OVERRIDES,
    )
    assert _lstms(result.model) and all(layer.unroll for layer in _lstms(result.model))
    assert result.history[0]["loss"] > 0
