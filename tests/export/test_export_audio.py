"""Serving audio models: the SavedModel's raw int16/float32 audio signatures, predict(audio=...), `zoo predict --audio`."""

import json
import os
import re
import wave

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import build_tiny, images

import zoo
from zoo.cli.main import main
from zoo.export import read_metadata
from zoo.export.model_call import SPLIT_MIN_BATCH
from zoo.training import runfiles

CLASSES = ["zero", "one", "two"]
# A tiny image + audio model: 1,024-sample window (128 ms at 8 kHz), 16 mel bins.
TINY_AUDIO = dict(audio_filters=(4,), audio_units=8, num_mel_bins=16, max_samples=1024, fft_length=128, frame_step=64)


def waveforms(batch, length, seed=0):
    return np.random.default_rng(seed).integers(-20000, 20000, (batch, length), dtype=np.int16)


def keras_reference(model, image, audio_int16):
    """The in-memory model on the pipeline's scaling: pixels / 255, samples / 32768."""
    feeds = {"image": image.astype(np.float32) / np.float32(255.0), "audio": audio_int16.astype(np.float32) / np.float32(32768.0)}
    return np.asarray(model({t.name: feeds[t.name] for t in model.inputs}, training=False))


def write_wav(path, samples, *, rate=8000, channels=1, width=2):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(np.asarray(samples, dtype=f"<i{width}").tobytes())
    return path


@pytest.fixture(scope="module")
def audio_model():
    keras.utils.set_random_seed(3)
    return build_tiny("cnn_audio_concat", **TINY_AUDIO)


@pytest.fixture(scope="module")
def audio_export(audio_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "sm"
    zoo.export_model(audio_model, path, class_names=CLASSES)
    return path


@pytest.fixture(scope="module")
def audio_serving(audio_export):
    return tf.saved_model.load(str(audio_export))


def test_metadata_names_rate_dtypes_and_cap(audio_export):
    metadata = read_metadata(audio_export)
    audio = metadata["inputs"]["audio"]
    assert metadata["signatures"] == ["serving_default", "serving_float"]
    assert (audio["dtype"], audio["shape"], audio["sample_rate"], audio["max_samples"]) == ("int16", [None, None], 8000, 80000)
    assert audio["float_signature"]["dtype"] == "float32" and audio["float_signature"]["range"] == [-1.0, 1.0]
    assert (metadata["audio_sample_rate"], metadata["max_audio_samples"]) == (8000, 80000)


# A batch of SPLIT_MIN_BATCH runs the image tower outside XLA (zoo.export.tower_split).
@pytest.mark.parametrize("batch", [4, SPLIT_MIN_BATCH])
def test_int16_and_float32_audio_round_trip_equal_to_keras(audio_model, audio_serving, batch):
    image = images(batch, seed=1)
    # Shorter and longer than the model's 1,024-sample window: the model pads or crops.
    for length in (700, 3000):
        audio = waveforms(batch, length, seed=length)
        expected = keras_reference(audio_model, image, audio)
        raw = audio_serving.signatures["serving_default"](image=tf.constant(image), audio=tf.constant(audio))
        np.testing.assert_allclose(raw["probabilities"].numpy(), expected, atol=1e-5)
        assert raw["class_name"].numpy().tolist() == [CLASSES[i].encode() for i in expected.argmax(-1)]
        floats = audio_serving.signatures["serving_float"](
            image=tf.constant(image.astype(np.float32) / 255.0), audio=tf.constant(audio.astype(np.float32) / 32768.0)
        )
        np.testing.assert_allclose(floats["probabilities"].numpy(), expected, atol=1e-5)


def _xla_compiled_functions(export_dir, signature) -> int:
    """How many functions of a signature's graph carry XLA's must-compile mark."""
    graph = tf.saved_model.load(str(export_dir)).signatures[signature].graph.as_graph_def()
    return sum(1 for f in graph.library.function if "_XlaMustCompile" in f.attr and f.attr["_XlaMustCompile"].b)


@pytest.mark.slow
def test_the_model_call_and_its_stft_are_xla_compiled_unless_asked_not_to(audio_model, audio_export, tmp_path):
    from zoo.export.audio_signature import audio_window

    # The waveform is fixed to the model's window before the compiled call: one compilation per batch size.
    assert audio_window(audio_model) == TINY_AUDIO["max_samples"]
    plain = zoo.export_model(audio_model, tmp_path / "plain", class_names=CLASSES, xla=False)
    for signature in ("serving_default", "serving_float"):
        assert _xla_compiled_functions(audio_export, signature) >= 1
        assert _xla_compiled_functions(plain, signature) == 0
    compiled, uncompiled = (tf.saved_model.load(str(p)).signatures["serving_default"] for p in (audio_export, plain))
    image = images(2, seed=4)
    for length in (1, 1024, 5000):
        audio = waveforms(2, length, seed=length)
        feeds = dict(image=tf.constant(image), audio=tf.constant(audio))
        expected = keras_reference(audio_model, image, audio)
        np.testing.assert_allclose(compiled(**feeds)["probabilities"].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(uncompiled(**feeds)["probabilities"].numpy(), expected, atol=1e-5)


def test_a_model_reading_the_raw_waveform_elsewhere_has_no_window():
    from zoo.export.audio_signature import audio_window
    from zoo.layers import FixedLengthWaveform

    waveform = keras.Input((None,), name="audio")
    fixed = FixedLengthWaveform(64)(waveform)
    # The raw length matters to this model, so the signature must not pad the waveform before it.
    loudness = keras.layers.GlobalAveragePooling1D()(keras.layers.Reshape((-1, 1))(waveform))
    joined = keras.layers.Concatenate()([fixed, loudness])
    assert audio_window(keras.Model(waveform, joined)) is None
    assert audio_window(keras.Model(waveform, fixed)) == 64


def test_batch_zero_gives_empty_outputs(audio_serving):
    out = audio_serving.signatures["serving_default"](image=tf.zeros([0, 12, 12, 1], tf.uint8), audio=tf.zeros([0, 50], tf.int16))
    assert out["probabilities"].shape == (0, 3) and out["label"].shape == (0,)


def _float_audio_with_nan():
    audio = waveforms(2, 900).astype(np.float32) / 32768.0
    audio[1, 5] = np.nan
    return audio


@pytest.mark.parametrize(
    "signature, audio, batch, message",
    [
        ("serving_default", np.zeros([2, 900, 1], np.int16), 2, r"audio: expected a tensor of shape \[batch, samples\]"),
        ("serving_default", np.zeros([900], np.int16), 900, r"audio: expected a tensor of shape \[batch, samples\]"),
        ("serving_default", np.zeros([2, 80001], np.int16), 2, r"audio: expected at most 80000 samples \(10 s at 8000 Hz\)"),
        ("serving_default", np.zeros([2, 0], np.int16), 2, "audio: expected at least 1 sample"),
        ("serving_default", np.zeros([3, 900], np.int16), 2, "image/audio: batch sizes differ: image has.*2.*audio has.*3"),
        ("serving_float", _float_audio_with_nan(), 2, r"audio: expected finite values \(no NaN or Inf\)"),
        ("serving_float", waveforms(2, 900).astype(np.float32), 2, r"audio: expected float samples in \[-1, 1\]"),
    ],
    ids=["rank3", "rank1", "too_long", "no_samples", "batch_mismatch", "nan", "unscaled_float"],
)
def test_bad_audio_is_an_error_naming_audio(audio_serving, signature, audio, batch, message):
    image = images(batch, seed=2)
    image = image.astype(np.float32) / 255.0 if signature == "serving_float" else image
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        audio_serving.signatures[signature](image=tf.constant(image), audio=tf.constant(audio))


@pytest.mark.slow
def test_predict_takes_a_wav_file_or_arrays(audio_model, audio_export, tmp_path):
    from zoo.export import predict

    image, audio = images(1, seed=5), waveforms(1, 1500, seed=5)
    expected = keras_reference(audio_model, image, audio)[0]
    wav = write_wav(tmp_path / "digit.wav", audio[0])
    for given in (wav, str(wav), audio[0], audio, audio.astype(np.float32) / 32768.0):
        result = predict(audio_export, image=image[0], audio=given)
        assert result["answer"] == CLASSES[int(expected.argmax())]
        np.testing.assert_allclose([result["probabilities"][c] for c in CLASSES], expected, atol=1e-5)
    with pytest.raises(ValueError, match="reads audio; none was given"):
        predict(audio_export, image=image[0])
    with pytest.raises(ValueError, match=r"audio: expected int16 samples or floats in \[-1, 1\].*int32"):
        predict(audio_export, image=image[0], audio=audio.astype(np.int32))
    with pytest.raises(ValueError, match=r"audio: expected finite float samples in \[-1, 1\]"):
        predict(audio_export, image=image[0], audio=audio.astype(np.float32))


def test_onnx_litert_and_unknown_rates_are_refused(audio_model, tmp_path):
    for fmt in ("onnx", "litert"):
        with pytest.raises(ValueError, match=f"Cannot export a model that reads audio as '{fmt}'.*tf_saved_model"):
            zoo.export_model(audio_model, tmp_path / fmt, fmt)
    waveform = keras.Input((None,), name="audio")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Reshape((-1, 1))(waveform))
    no_rate = keras.Model(waveform, keras.layers.Dense(2, activation="softmax")(pooled))
    with pytest.raises(ValueError, match="Cannot tell the sample rate of the model's 'audio' input"):
        zoo.export_model(no_rate, tmp_path / "x")
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def audio_run_export(audio_model, tmp_path_factory):
    """`zoo export` of a run folder holding the tiny audio model."""
    root = tmp_path_factory.mktemp("audio_run")
    run, out = root / "run", root / "served"
    config = {"model": "cnn_audio_concat", "class_names": CLASSES}
    runfiles.write_final(str(run), model=audio_model, config=config, metrics={"step": 1, "epoch": 1}, vocabulary=None)
    assert main(["export", str(run), "--out", str(out)]) == 0
    return out


def test_cli_predicts_from_a_wav_file(audio_model, audio_run_export, tmp_path, capsys):
    image, audio = images(1, seed=7), waveforms(1, 2000, seed=7)
    png = tmp_path / "digit.png"
    png.write_bytes(tf.io.encode_png(image[0]).numpy())
    wav = write_wav(tmp_path / "digit.wav", audio[0])
    capsys.readouterr()
    assert main(["predict", str(audio_run_export), "--image", str(png), "--audio", str(wav), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = keras_reference(audio_model, image, audio)[0]
    assert result["answer"] == CLASSES[int(expected.argmax())]
    np.testing.assert_allclose([result["probabilities"][c] for c in CLASSES], expected, atol=1e-5)


def _bad_wavs(folder):
    tone = (np.sin(np.arange(4000) / 5.0) * 8000).astype(np.int16)
    return {
        "rate": (write_wav(folder / "rate.wav", tone, rate=16000), "sampled at 16000 Hz; expected 8000 Hz"),
        "stereo": (write_wav(folder / "stereo.wav", np.repeat(tone, 2), channels=2), r"has 2 channels; expected 1 \(mono\)"),
        "empty": (write_wav(folder / "empty.wav", tone[:0]), "holds no samples"),
        "8bit": (write_wav(folder / "8bit.wav", np.zeros(4000, np.uint8), width=1), "8-bit samples; expected 16-bit PCM"),
        # Ten minutes at 8 kHz: refused from the header, before its samples are read.
        "ten_minutes": (write_wav(folder / "long.wav", np.zeros(600 * 8000, np.int16)),
                        r"holds 4800000 samples \(600.0 s\); expected at most 80000"),
        "not_wav": (folder / "noise.wav", "is not a readable WAV file"),
    }


@pytest.mark.parametrize("case", ["rate", "stereo", "empty", "8bit", "ten_minutes", "not_wav", "missing"])
def test_cli_refuses_bad_wav_files_with_one_line(audio_run_export, case, tmp_path, capsys):
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really")
    png = tmp_path / "digit.png"
    png.write_bytes(tf.io.encode_png(images(1)[0]).numpy())
    wav, message = _bad_wavs(tmp_path).get(case, (tmp_path / "absent.wav", "does not exist"))
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(audio_run_export))
    capsys.readouterr()
    assert main(["predict", str(audio_run_export), "--image", str(png), "--audio", str(wav)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("zoo predict: error: ") and str(wav) in lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(audio_run_export))) == before


def test_cli_asks_for_the_audio_an_export_reads(audio_run_export, capsys):
    assert main(["predict", str(audio_run_export), "--image", "x.png"]) == 2
    assert "this model reads audio: pass --audio FILE.wav" in capsys.readouterr().err


def _audio_models():
    return zoo.list_models("*audio*")


@pytest.mark.slow
@pytest.mark.parametrize("name", _audio_models())
def test_every_audio_model_exports_with_parity(name, tmp_path):
    from export_helpers import VOCABULARY, texts

    from zoo.data.text import Tokenizer
    from zoo.registry import get_entry

    small = dict(num_heads=2, attention_dim=8)
    model = build_tiny(name, **TINY_AUDIO, **{k: v for k, v in small.items() if k in get_entry(name).defaults})
    reads_text = "token_ids" in [t.name for t in model.inputs]
    zoo.export_model(model, tmp_path / "sm", vocabulary=VOCABULARY if reads_text else None)
    serving = tf.saved_model.load(str(tmp_path / "sm"))
    audio = waveforms(3, 1500, seed=11)
    feeds, reference = {"audio": tf.constant(audio)}, {"audio": audio.astype(np.float32) / np.float32(32768.0)}
    if "image" in [t.name for t in model.inputs]:
        image = images(3, seed=11)
        feeds["image"], reference["image"] = tf.constant(image), image.astype(np.float32) / np.float32(255.0)
    if reads_text:
        feeds["text"] = tf.constant(texts(3))
        reference["token_ids"] = Tokenizer(VOCABULARY, 6)(feeds["text"]).numpy()
    expected = np.asarray(model({t.name: reference[t.name] for t in model.inputs}, training=False))
    np.testing.assert_allclose(serving.signatures["serving_default"](**feeds)["probabilities"].numpy(), expected, atol=1e-5)


@pytest.mark.slow
def test_tiny_av_run_answers_a_real_test_recording_and_image(tmp_path, capsys):
    """The README's worked example on a small run: train, `zoo export`, `zoo predict` a spoken and a written 7."""
    if not os.environ.get("ZOO_DATA_DIR"):
        pytest.skip("set ZOO_DATA_DIR to the folder holding mnist/ and fsdd/")
    from zoo.datasets.mnist_text import mnist_files

    from zoo.data import audio

    data_dir = tmp_path / "tfds"

    def batches(split, **kwargs):
        return lambda ctx: audio.make_dataset("av", split, input_context=ctx, data_dir=data_dir, **kwargs)

    run = tmp_path / "run"
    result = zoo.train(
        "cnn_audio_concat", out=run, epochs=2, batch_size=64, seed=0, steps_per_epoch=48,
        dataset_fn=batches("train[:3072]", batch_size=64, shuffle=True), validation_split=None,
        extra_config={"class_names": audio.class_names("av")},
    )
    assert main(["export", str(run), "--out", str(tmp_path / "served")]) == 0
    test_images, labels = mnist_files.load_split("test")
    assert labels[0] == 7
    png = tmp_path / "7.png"
    png.write_bytes(tf.io.encode_png(test_images[0][..., None]).numpy())
    recording = os.path.join(os.environ["ZOO_DATA_DIR"], "fsdd", "recordings", "7_theo_0.wav")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "served"), "--image", str(png), "--audio", recording, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    expected = keras_reference(result.model, test_images[:1, ..., None], _read(recording)[None])[0]
    np.testing.assert_allclose(answer["probabilities"]["seven"], expected[7], atol=1e-5)
    assert answer["answer"] == "seven", answer


def _read(path):
    from zoo.datasets.fsdd.fsdd_files import read_wav

    return read_wav(path)
