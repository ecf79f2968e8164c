"""`zoo export RUN_DIR` and `zoo predict EXPORT_DIR` end to end on a tiny run directory."""

import importlib.util
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import VOCABULARY, build_tiny, images, png_file, reference

from zoo.cli.main import main
from zoo.export import MAX_TEXT_BYTES
from zoo.training import runfiles

CLASSES = ["no", "yes", "maybe"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    keras.utils.set_random_seed(4)
    model = build_tiny()
    root = tmp_path_factory.mktemp("run")
    config = {"model": "cnn_lstm_concat", "max_length": 6, "class_names": CLASSES}
    # The layout zoo.train leaves: vocabulary, model, config, then the metrics.json marker.
    runfiles.write_final(str(root), model=model, config=config, metrics={"step": 1, "epoch": 1}, vocabulary=VOCABULARY)
    return root, model


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory):
    image = images(1, seed=9)
    return png_file(tmp_path_factory.mktemp("png") / "digit.png", image[0]), image


def _predict_json(capsys, export_dir, png, text):
    capsys.readouterr()
    assert main(["predict", str(export_dir), "--image", str(png), "--text", text, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_export_and_predict_saved_model(run_dir, digit_png, tmp_path, capsys):
    root, model = run_dir
    png, image = digit_png
    out = tmp_path / "served"
    assert main(["export", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "exported tf_saved_model" in printed and "text string[batch]" in printed
    result = _predict_json(capsys, out, png, "Is it even?")
    expected = reference(model, image, np.array([b"Is it even?"], dtype=object))[0]
    assert sorted(result) == ["answer", "index", "probabilities"]
    assert result["index"] == int(expected.argmax())
    assert result["answer"] == CLASSES[result["index"]]
    assert sorted(result["probabilities"]) == sorted(CLASSES)
    np.testing.assert_allclose([result["probabilities"][name] for name in CLASSES], expected, atol=1e-5)
    assert main(["predict", str(out), "--image", str(png), "--text", "is it even?", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"answer: {result['answer']}"
    assert lines[1] == "top probabilities:" and lines[2].split()[0] == result["answer"]
    assert len(lines) == 4  # answer, header, two probabilities

    # Bad requests: one line each, before the model runs; nothing written.
    before = sorted(p.name for p in tmp_path.iterdir())
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image")
    for argv, message in [
        (["--image", str(png), "--text", "x" * (MAX_TEXT_BYTES + 1)],
         f"--text is {MAX_TEXT_BYTES + 1} bytes (UTF-8); this export accepts at most {MAX_TEXT_BYTES}"),
        (["--image", str(not_an_image), "--text", "x"], f"{str(not_an_image)!r} is not a PNG, JPEG, GIF or BMP image"),
    ]:
        assert main(["predict", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert "function_node" not in err[0] and "DecodeImage" not in err[0]
    not_an_image.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == before

    # A dark digit on white paper: answered, with one warning line.
    light = tmp_path / "light.png"
    paper = np.full((12, 12, 1), 230, np.uint8)
    paper[3:9, 5:7] = 20  # a dark stroke
    light.write_bytes(tf.io.encode_png(paper).numpy())
    assert main(["predict", str(out), "--image", str(light), "--text", "is it even?"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"zoo predict: warning: {light}: ") and "light digit on a dark background" in err[0]

    # An existing export is kept unless --overwrite is given.
    assert main(["export", str(root), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(root), "--out", str(out), "--overwrite"]) == 0


@pytest.mark.parametrize("unroll", [[], ["--unroll"]], ids=["lstm-as-built", "unrolled"])
def test_litert_export_of_an_lstm_run_predicts_the_same(run_dir, digit_png, tmp_path, capsys, unroll):
    # An LSTM run needs no --unroll for LiteRT (the export unrolls a copy itself); the flag still works.
    pytest.importorskip("ai_edge_litert.interpreter")
    root, model = run_dir
    png, image = digit_png
    assert main(["export", str(root), "--format", "litert", *unroll, "--out", str(tmp_path / "lite")]) == 0
    assert os.path.exists(tmp_path / "lite" / "TOKENIZE.md")
    result = _predict_json(capsys, tmp_path / "lite", png, "what digit is this")
    expected = reference(model, image, np.array([b"what digit is this"], dtype=object))[0]
    assert result["index"] == int(expected.argmax())
    assert result["probabilities"][result["answer"]] == pytest.approx(float(expected.max()), abs=1e-3)


@pytest.mark.slow
def test_onnx_export_and_predict(run_dir, digit_png, tmp_path, capsys):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    root, model = run_dir
    png, image = digit_png
    assert main(["export", str(root), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    result = _predict_json(capsys, tmp_path / "onnx", png, "is it odd")
    expected = reference(model, image, np.array([b"is it odd"], dtype=object))[0]
    assert result["index"] == int(expected.argmax())
    assert result["answer"] == CLASSES[result["index"]]
    assert result["probabilities"][result["answer"]] == pytest.approx(float(expected.max()), abs=1e-4)


@pytest.mark.slow
def test_bad_requests_exit_2_with_one_line(run_dir, digit_png, tmp_path, capsys):
    root, _ = run_dir
    png, _ = digit_png
    out = tmp_path / "served"
    assert main(["export", str(root), "--out", str(out)]) == 0
    capsys.readouterr()
    cases = [
        (["predict", str(out), "--image", str(png)], "pass --text"),
        (["predict", str(tmp_path), "--text", "x"], "is not a zoo export"),
        (["predict", str(out), "--image", str(tmp_path / "nope.png"), "--text", "x"], "does not exist"),
        (["export", str(tmp_path / "no_run"), "--out", str(tmp_path / "x")], "does not exist"),
    ]
    big = tmp_path / "big.png"
    big.write_bytes(tf.io.encode_png(np.zeros((20, 20, 1), np.uint8)).numpy())
    cases.append((["predict", str(out), "--image", str(big), "--text", "x"], "is 20x20 pixels; the model takes 12x12"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["predict", str(out), "--image", str(big), "--text", "x", "--resize"]) == 0


def test_run_with_lambda_layer_is_refused(tmp_path, capsys):
    inputs = keras.Input((12, 12, 1), name="image")
    x = keras.layers.Lambda(lambda t: t * 2.0, name="sneaky")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x)))
    model.save(tmp_path / "model.keras")
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "Refusing to load" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("zoo.data.pipeline") is None, reason="needs zoo.data.pipeline")
def test_raw_mnist_batches_through_the_export_match_the_pipeline(tmp_path):
    """Real MNIST test images and questions: the graph's preprocessing equals the training pipeline's."""
    if not os.environ.get("ZOO_DATA_DIR"):
        pytest.skip("ZOO_DATA_DIR is not set (the Makefile sets it)")
    import zoo
    from zoo.data import pipeline
    from zoo.data.text import Tokenizer

    data_dir = tmp_path / "tfds"
    vocabulary = pipeline.fit_vocabulary("vqa", data_dir=data_dir)
    tokenizer = Tokenizer(vocabulary, 12)
    model = zoo.build("cnn_lstm_concat", vocab_size=len(vocabulary), max_length=12, num_classes=12,
                      conv_filters=(4, 8), image_units=8, embed_dim=8, rnn_units=(8,), head_units=8)
    zoo.export_model(model, tmp_path / "sm", vocabulary=vocabulary, class_names=pipeline.class_names("vqa"))
    signature = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    raw = pipeline.make_dataset("vqa", "test[:64]", mode="raw", batch_size=64, data_dir=data_dir, shuffle=False,
                                deterministic=True)
    ready = pipeline.make_dataset("vqa", "test[:64]", mode="model", batch_size=64, data_dir=data_dir, shuffle=False,
                                  deterministic=True, tokenizer=tokenizer, max_length=12)
    (raw_features, raw_labels), (features, labels) = next(iter(raw)), next(iter(ready))
    np.testing.assert_array_equal(raw_labels, labels)
    served = signature(image=raw_features["image"], text=raw_features["text"])["probabilities"].numpy()
    expected = np.asarray(model({"image": features["image"], "token_ids": features["token_ids"]}, training=False))
    assert np.abs(served - expected).max() <= 1e-5
