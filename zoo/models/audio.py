"""Audio models: spoken-digit baselines and image + audio (+ text) fusions.

Names follow the catalog's grammar, towers then fusion: `melcnn_audio` and
`melconv1d_audio` are unimodal (tower, then the modality, like `cnn_image`);
`cnn_audio_<fusion>` joins the image CNN and the audio tower, and
`cnn_audio_lstm_<fusion>` adds the LSTM text tower. The audio tower of the
fused models is the 2-D log-mel CNN, or the 1-D one with `audio_tower="conv1d"`.
Every model takes `audio`: float32 samples in [-1, 1) at `sample_rate`, any
length, padded or cropped to `max_samples` in the graph (`zoo.towers.audio`).
"""

from typing import Literal

import keras

from zoo.core import keys
from zoo.layers import CrossModalAttention, GatedFusion
from zoo.models import common
from zoo.models.common import (
    CLASSES,
    CNN_TOWER,
    HEAD,
    IMAGE_INPUT,
    RNN_TOWER,
    TEXT_INPUT,
    H,
    declare,
)
from zoo.registry import register_model, require
from zoo.towers import audio as audio_towers
from zoo.towers import image as image_towers
from zoo.towers import text as text_towers

AUDIO_INPUT = (
    H("sample_rate", int, 8000),
    H("max_samples", int, 8000),
    H("num_mel_bins", int, 40),
    H("fft_length", int, 256),
    H("frame_step", int, 128),
)
AUDIO_TOWER = (
    H("audio_tower", Literal["cnn2d", "conv1d"], "cnn2d"),
    H("audio_filters", tuple[int, ...], (16, 32, 64)),
    H("audio_units", int, 128),
)
ATTENTION = (H("num_heads", int, 4), H("attention_dim", int, 64), H("attention_dropout", float, 0.0))
_AV = ("image", "audio")
_AVT = ("image", "audio", "text")


def check(hp):
    """The shared checks plus the audio front end's: the window fits, every pooling stage keeps a cell."""
    common.check(hp)
    for key in ("sample_rate", "max_samples", "num_mel_bins", "fft_length", "frame_step", "audio_units"):
        require(hp[key] >= 1, key, hp[key], "an integer >= 1")
    require(hp["fft_length"] <= hp["max_samples"], "fft_length", hp["fft_length"],
            f"at most max_samples={hp['max_samples']}")
    filters = hp["audio_filters"]
    require(len(filters) >= 1 and all(f >= 1 for f in filters), "audio_filters", filters,
            "a non-empty sequence of integers >= 1")
    frames = hp["max_samples"] // hp["frame_step"] + 1
    smallest = frames if hp["audio_tower"] == "conv1d" else min(frames, hp["num_mel_bins"])
    require(smallest >> len(filters) >= 1, "audio_filters", filters,
            f"at most {smallest.bit_length() - 1} stages for {frames} frames x {hp['num_mel_bins']} mel bins")


def audio_input():
    """The `audio` input: float32 samples in [-1, 1), any length."""
    return keras.Input(shape=(None,), dtype="float32", name=keys.AUDIO)


def _spectrogram(waveforms, hp):
    return audio_towers.log_mel(
        waveforms, num_samples=hp["max_samples"], sample_rate=hp["sample_rate"], num_mel_bins=hp["num_mel_bins"],
        fft_length=hp["fft_length"], frame_step=hp["frame_step"],
    )


def _audio_positions(waveforms, hp):
    """The audio tower's output as a sequence of positions [B, P, C] (map cells, or time steps)."""
    spectrogram = _spectrogram(waveforms, hp)
    if hp["audio_tower"] == "conv1d":
        return audio_towers.conv1d_sequence(spectrogram, filters=hp["audio_filters"])
    return image_towers.feature_map_positions(
        audio_towers.cnn2d_feature_map(spectrogram, filters=hp["audio_filters"]), prefix="audio"
    )


def _audio_vector(waveforms, hp):
    if hp["audio_tower"] == "conv1d":
        return audio_towers.sequence_features(_audio_positions(waveforms, hp), units=hp["audio_units"])
    feature_map = audio_towers.cnn2d_feature_map(_spectrogram(waveforms, hp), filters=hp["audio_filters"])
    return image_towers.flatten_features(feature_map, units=hp["audio_units"], prefix="audio")


def _head(fused, hp):
    return common.head(fused, num_classes=hp["num_classes"], head_units=hp["head_units"],
                       head_dropout=hp["head_dropout"], task=hp["task"])


def _inputs(hp, with_text):
    inputs = {keys.IMAGE: common.image_input(hp["image_shape"]), keys.AUDIO: audio_input()}
    if with_text:
        inputs[keys.TOKEN_IDS] = common.token_input(hp["max_length"])
    return inputs


def _attend(queries, image_positions, hp, name):
    return CrossModalAttention(
        hp["num_heads"], hp["attention_dim"] // hp["num_heads"], hp["attention_dropout"], name=name
    )([queries, image_positions])


# --- unimodal ---------------------------------------------------------------


@register_model(
    "melcnn_audio",
    origin="Log-mel spectrogram (computed in the model) and a small 2-D CNN over time x mel bins, "
           "the usual keyword-spotting baseline (Sainath & Parada, 2015, 'CNNs for small-footprint keyword spotting').",
    modalities=("audio",), fusion=None, check=check,
)
@declare(*AUDIO_INPUT, *AUDIO_TOWER, *CLASSES, *HEAD)
def melcnn_audio(**hp):
    """Audio-only baseline: log-mel spectrogram, 2-D CNN (or 1-D with audio_tower="conv1d"), hidden-layer head."""
    waveforms = audio_input()
    return keras.Model({keys.AUDIO: waveforms}, _head(_audio_vector(waveforms, hp), hp), name="melcnn_audio")


@register_model(
    "melconv1d_audio",
    origin="Log-mel spectrogram and 1-D convolutions over time with mel bins as channels (as in TC-ResNet's "
           "temporal convolutions, Choi et al., 2019), global max pooling.",
    modalities=("audio",), fusion=None, check=check,
    defaults={"audio_tower": "conv1d", "audio_filters": (64, 128)},
)
@declare(*AUDIO_INPUT, *AUDIO_TOWER, *CLASSES, *HEAD)
def melconv1d_audio(**hp):
    """Audio-only baseline: log-mel spectrogram, 1-D convolutions over time, global max, hidden-layer head."""
    waveforms = audio_input()
    return keras.Model({keys.AUDIO: waveforms}, _head(_audio_vector(waveforms, hp), hp), name="melconv1d_audio")


# --- image + audio ----------------------------------------------------------

AV_TOWERS = (*IMAGE_INPUT, *CNN_TOWER, *AUDIO_INPUT, *AUDIO_TOWER)


@register_model("cnn_audio_concat", origin="Seed system 3's concatenation fusion, with an audio tower for the text tower.",
                modalities=_AV, fusion="concat", check=check)
@declare(*AV_TOWERS, *CLASSES, *HEAD)
def cnn_audio_concat(**hp):
    """Image CNN and log-mel audio features concatenated, then a hidden-layer head."""
    inputs = _inputs(hp, with_text=False)
    fused = keras.layers.Concatenate(name="fusion_concat")(
        [common.image_vector(inputs[keys.IMAGE], hp), _audio_vector(inputs[keys.AUDIO], hp)])
    return keras.Model(inputs, _head(fused, hp), name="cnn_audio_concat")


@register_model("cnn_audio_gated", origin="Gated multimodal unit (Arevalo et al., 2017) over image and audio features.",
                modalities=_AV, fusion="gated", check=check)
@declare(*AV_TOWERS, H("gate_units", int, 128), *CLASSES, *HEAD)
def cnn_audio_gated(**hp):
    """A learned per-feature gate weighs image against audio features (`GatedFusion.gate_values` shows it)."""
    inputs = _inputs(hp, with_text=False)
    fused = GatedFusion(hp["gate_units"], name="fusion_gated")(
        [common.image_vector(inputs[keys.IMAGE], hp), _audio_vector(inputs[keys.AUDIO], hp)])
    return keras.Model(inputs, _head(fused, hp), name="cnn_audio_gated")


@register_model("cnn_audio_xattn", origin="Seed system 5's cross-modal attention with audio positions as the queries.",
                modalities=_AV, fusion="attention", check=check)
@declare(*AV_TOWERS, *ATTENTION, *CLASSES, *HEAD)
def cnn_audio_xattn(**hp):
    """Each time-frequency cell of the audio map attends over the image CNN's 5x5 positions; mean; head."""
    inputs = _inputs(hp, with_text=False)
    image_positions = image_towers.feature_map_positions(common.image_map(inputs[keys.IMAGE], hp))
    attended = _attend(_audio_positions(inputs[keys.AUDIO], hp), image_positions, hp, "fusion_attention")
    fused = keras.layers.GlobalAveragePooling1D(name="fusion_pool")(attended)
    return keras.Model(inputs, _head(fused, hp), name="cnn_audio_xattn")


# --- image + audio + text ---------------------------------------------------

AVT_TOWERS = (*AV_TOWERS, *TEXT_INPUT, *RNN_TOWER)


@register_model("cnn_audio_lstm_concat", origin="Seed system 3's concatenation fusion over three towers.",
                modalities=_AVT, fusion="concat", check=check)
@declare(*AVT_TOWERS, *CLASSES, *HEAD)
def cnn_audio_lstm_concat(**hp):
    """Image, audio and text features concatenated, then a hidden-layer head."""
    inputs = _inputs(hp, with_text=True)
    fused = keras.layers.Concatenate(name="fusion_concat")([
        common.image_vector(inputs[keys.IMAGE], hp), _audio_vector(inputs[keys.AUDIO], hp), common.text_features(inputs[keys.TOKEN_IDS], hp)])
    return keras.Model(inputs, _head(fused, hp), name="cnn_audio_lstm_concat")


@register_model("cnn_audio_lstm_gated",
                origin="Gated multimodal units (Arevalo et al., 2017), nested: image against audio, then against text.",
                modalities=_AVT, fusion="gated", check=check)
@declare(*AVT_TOWERS, H("gate_units", int, 128), *CLASSES, *HEAD)
def cnn_audio_lstm_gated(**hp):
    """A gate weighs image against audio (`fusion_gated_image_audio`), a second gate that against text."""
    inputs = _inputs(hp, with_text=True)
    image_audio = GatedFusion(hp["gate_units"], name="fusion_gated_image_audio")(
        [common.image_vector(inputs[keys.IMAGE], hp), _audio_vector(inputs[keys.AUDIO], hp)])
    fused = GatedFusion(hp["gate_units"], name="fusion_gated_text")([image_audio, common.text_features(inputs[keys.TOKEN_IDS], hp)])
    return keras.Model(inputs, _head(fused, hp), name="cnn_audio_lstm_gated")


@register_model("cnn_audio_lstm_xattn",
                origin="Seed system 5's cross-modal attention twice: audio positions and text states each attend over "
                       "the image positions.",
                modalities=_AVT, fusion="attention", check=check)
@declare(*AVT_TOWERS, *ATTENTION, *CLASSES, *HEAD)
def cnn_audio_lstm_xattn(**hp):
    """Audio cells and words attend over the image's 5x5 positions; the two pooled results are concatenated."""
    inputs = _inputs(hp, with_text=True)
    image_positions = image_towers.feature_map_positions(common.image_map(inputs[keys.IMAGE], hp))
    audio = _attend(_audio_positions(inputs[keys.AUDIO], hp), image_positions, hp, "fusion_audio_attention")
    text = _attend(common.text_features(inputs[keys.TOKEN_IDS], hp, return_sequences=True), image_positions, hp,
                   "fusion_text_attention")
    fused = keras.layers.Concatenate(name="fusion_concat")([
        keras.layers.GlobalAveragePooling1D(name="fusion_audio_pool")(audio),
        text_towers.masked_mean(text, prefix="fusion_text")])
    return keras.Model(inputs, _head(fused, hp), name="cnn_audio_lstm_xattn")
