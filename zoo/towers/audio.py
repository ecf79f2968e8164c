"""Audio towers: from a raw waveform to a log-mel spectrogram to features, every layer named `audio_...`.

The spectrogram is computed in the model, so a model takes raw samples (float32
in [-1, 1), 8 kHz by default) and an export serves raw audio. Lengths vary:
`log_mel` pads (zeros at the end) or crops (the end) every waveform to
`num_samples` first, so batches padded to their longest recording and single
recordings give the same features.
"""

from collections.abc import Sequence

import keras

from zoo.layers import FixedLengthWaveform, PowerToDecibels


def log_mel(
    waveforms,
    *,
    num_samples: int = 8000,
    sample_rate: int = 8000,
    num_mel_bins: int = 40,
    fft_length: int = 256,
    frame_step: int = 128,
    prefix: str = "audio",
):
    """Waveform [B, T] -> fixed length -> mel power spectrogram -> decibels -> [B, frames, mel bins].

    With the defaults (1 s at 8 kHz, 256-sample Hann windows every 128 samples,
    40 mel bins from 20 Hz to 4 kHz) the output is [B, 63, 40]. A batch
    normalisation per mel bin ends the tower's input, so later layers see
    standardised decibels whatever the recording level.

    Returns:
        The log-mel spectrogram, time-major: [B, num_samples // frame_step + 1, num_mel_bins].
    """
    x = FixedLengthWaveform(num_samples, name=f"{prefix}_fixed_length")(waveforms)
    x = keras.layers.MelSpectrogram(
        fft_length=fft_length,
        sequence_stride=frame_step,
        sequence_length=fft_length,
        sampling_rate=sample_rate,
        num_mel_bins=num_mel_bins,
        min_freq=20.0,
        max_freq=sample_rate / 2,
        # Its own decibel scale floors by the batch maximum (batch-dependent); see PowerToDecibels.
        power_to_db=False,
        name=f"{prefix}_mel",
    )(x)
    x = PowerToDecibels(name=f"{prefix}_decibels")(x)
    x = keras.layers.Permute((2, 1), name=f"{prefix}_time_major")(x)
    return keras.layers.BatchNormalization(name=f"{prefix}_input_norm")(x)


def cnn2d_feature_map(spectrogram, *, filters: Sequence[int] = (16, 32, 64), prefix: str = "audio"):
    """A small 2-D CNN over time x mel bins: [Conv2D(3x3, same, relu) -> MaxPool(2)] per entry of `filters`.

    Returns:
        The feature map [B, frames / 2^n, mel bins / 2^n, filters[-1]] (7 x 5 x 64 by default).
    """
    _, frames, bins = spectrogram.shape
    x = keras.layers.Reshape((frames, bins, 1), name=f"{prefix}_channels")(spectrogram)
    for i, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{prefix}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"{prefix}_pool{i}")(x)
    return x


def conv1d_sequence(spectrogram, *, filters: Sequence[int] = (64, 128), kernel_size: int = 5, prefix: str = "audio"):
    """A 1-D convolutional tower over time, mel bins as channels: [Conv1D(same, relu) -> MaxPool(2)] per filter.

    Returns:
        The sequence [B, frames / 2^n, filters[-1]] (15 x 128 by default).
    """
    x = spectrogram
    for i, width in enumerate(filters, start=1):
        x = keras.layers.Conv1D(width, kernel_size, padding="same", activation="relu", name=f"{prefix}_conv{i}")(x)
        x = keras.layers.MaxPooling1D(2, name=f"{prefix}_pool{i}")(x)
    return x


def sequence_features(sequence, *, units: int = 128, prefix: str = "audio"):
    """Global max over time -> Dense(units, relu): the digit may be anywhere in the window."""
    x = keras.layers.GlobalMaxPooling1D(name=f"{prefix}_gmp")(sequence)
    return keras.layers.Dense(units, activation="relu", name=f"{prefix}_dense")(x)
