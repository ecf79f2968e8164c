"""Audio models: raw waveforms of any length, the same answer however padded or batched; front-end checks."""

import numpy as np
import pytest

import zoo

AUDIO_MODELS = zoo.list_models("*audio*")


def test_audio_models_are_listed_by_modality():
    assert {"melcnn_audio", "melconv1d_audio", "cnn_audio_concat", "cnn_audio_lstm_xattn"} <= set(AUDIO_MODELS)
    assert all("audio" in zoo.registry.get_entry(name).modalities for name in AUDIO_MODELS)


@pytest.mark.parametrize("name", ["melcnn_audio", "melconv1d_audio", "cnn_audio_lstm_gated"])
def test_trailing_zeros_and_batch_mates_do_not_change_outputs(name):
    model = zoo.build(name)
    inputs = zoo.testing.random_inputs(model, batch_size=2, seed=4)
    inputs["audio"] = inputs["audio"][:, :700] * np.array([[0.5], [0.01]], "float32")  # a loud and a quiet recording
    expected = np.asarray(model(inputs, training=False))
    padded = {**inputs, "audio": np.pad(inputs["audio"], ((0, 0), (0, 3000)))}
    np.testing.assert_allclose(model(padded, training=False), expected, atol=1e-5)
    alone = {k: v[1:] for k, v in inputs.items()}
    np.testing.assert_allclose(model(alone, training=False), expected[1:], atol=1e-5)


def test_longer_recordings_are_cropped_to_max_samples():
    model = zoo.build("melcnn_audio", max_samples=1000, frame_step=100, audio_filters=(4, 4))
    waves = np.random.default_rng(0).uniform(-1, 1, (1, 1000)).astype("float32")
    longer = np.concatenate([waves, np.ones((1, 500), "float32")], axis=1)
    np.testing.assert_allclose(model({"audio": longer}, training=False), model({"audio": waves}, training=False), atol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    ({"fft_length": 512, "max_samples": 400}, "fft_length=512: expected at most max_samples=400"),
    ({"audio_filters": (8,) * 6}, "audio_filters="),
    ({"audio_tower": "lstm"}, "audio_tower="),
])
def test_front_end_overrides_are_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("melcnn_audio", **overrides)
