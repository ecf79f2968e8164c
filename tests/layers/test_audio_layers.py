"""The audio front-end layers through both layer harnesses, their behaviour, and the MelSpectrogram MAC formula."""

import keras
import numpy as np
import pytest
from keras.src.testing import TestCase as KerasTestCase

from zoo.layers import FixedLengthWaveform, PowerToDecibels
from zoo.layers.cost import count_macs
from zoo.testing import run_layer_test

WAVES = np.random.default_rng(0).uniform(-1, 1, size=(3, 50)).astype("float32")
POWER = np.random.default_rng(1).uniform(0, 10, size=(3, 4, 6)).astype("float32")
CASES = {
    "crop": (FixedLengthWaveform, {"num_samples": 20}, WAVES, (3, 20)),
    "pad": (FixedLengthWaveform, {"num_samples": 80}, WAVES, (3, 80)),
    "decibels": (PowerToDecibels, {"floor": 1e-4}, POWER, POWER.shape),
}


@pytest.mark.parametrize("case", CASES)
def test_layer_contract(case):
    layer_class, kwargs, data, shape = CASES[case]
    run_layer_test(layer_class, kwargs, data, expected_output_shape=shape, expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0, check_training=False, mixed_precision_atol=0.05)


@pytest.mark.parametrize("case", CASES)
def test_layer_passes_keras_own_harness(case):
    layer_class, kwargs, data, shape = CASES[case]
    KerasTestCase().run_layer_test(
        layer_class, kwargs, input_data=data, expected_output_shape=shape, expected_output_dtype="float32",
        expected_num_trainable_weights=0, expected_num_non_trainable_weights=0, run_training_check=False,
        run_mixed_precision_check=True,
    )


def test_fixed_length_keeps_the_start_and_pads_with_zeros():
    np.testing.assert_array_equal(FixedLengthWaveform(20)(WAVES), WAVES[:, :20])
    padded = np.asarray(FixedLengthWaveform(80)(WAVES))
    np.testing.assert_array_equal(padded[:, :50], WAVES)
    assert not padded[:, 50:].any()
    with pytest.raises(ValueError, match="num_samples=0"):
        FixedLengthWaveform(0)


def test_decibels_are_per_element_and_floored():
    power = np.array([[1.0, 100.0, 0.0]], "float32")
    np.testing.assert_allclose(PowerToDecibels(floor=1e-6)(power), [[0.0, 20.0, -60.0]], atol=1e-4)
    # Unlike MelSpectrogram's top_db, a loud example in the batch changes nothing for the others.
    alone = np.asarray(PowerToDecibels()(power[:, :1]))
    with_loud = np.asarray(PowerToDecibels()(np.array([[1.0], [1e9]], "float32")))
    np.testing.assert_array_equal(alone[0], with_loud[0])


def test_mel_spectrogram_macs_follow_the_formula():
    waves = keras.Input((800,))
    mel = keras.layers.MelSpectrogram(fft_length=64, sequence_stride=32, sampling_rate=8000, num_mel_bins=10)(waves)
    frames = 800 // 32 + 1
    assert mel.shape == (None, 10, frames)
    per_frame = 64 + 4 * 32 * 6 + 2 * 33 + 33 * 10
    assert count_macs(keras.Model(waves, mel)) == frames * per_frame
