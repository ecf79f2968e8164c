"""`export_run` and `zoo export RUN_DIR` on runs of every kind `zoo train` makes beyond classifiers:
a dual encoder (zero-shot over its data config's prompts), a captioner, and a model on a KerasHub text
backbone (its tokenizer kept in the run as `text_preset/`). Each run is a real `zoo.train` of a tiny
model on the describe config prepared from the builder's dummy MNIST files."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import png_file
from zoo.datasets.mnist_text import mnist_files as mnist
from zoo.datasets.mnist_text import mnist_text_dataset_builder as builder_module

import zoo
from zoo.cli.main import main
from zoo.data import Tokenizer, pipeline
from zoo.data.hub_text import BackboneTokenizer, word_tokenizer
from zoo.export import export_run, read_metadata
from zoo.models.pretrained import save_tower_presets
from zoo.training import RunIncomplete, runfiles

# Each fixture trains and exports a run end to end: about two minutes in all on a 2-core CPU.
pytestmark = pytest.mark.slow

DUMMY_DIR = os.fspath(builder_module.Builder.code_path.parent / "dummy_data")
SPLIT = "train[:16]"
TRAIN = dict(train_split=SPLIT, validation_split=None, epochs=1, batch_size=8, verbose=0, seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(data_dir, source_dir, vocabulary) of the describe config, prepared from the dummy files."""
    checksums = {path.name: mnist.file_info(path) for path in os.scandir(DUMMY_DIR) if path.is_file()}
    data_dir = os.fspath(tmp_path_factory.mktemp("tfds"))
    builder_module.Builder(data_dir=data_dir, config="describe", source_dir=DUMMY_DIR,
                           source_checksums=checksums).download_and_prepare()
    return data_dir, DUMMY_DIR, pipeline.fit_vocabulary("describe", data_dir=data_dir, source_dir=DUMMY_DIR)


def _images(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)


def _png(directory, image):
    return png_file(directory / "digit.png", image)


def _cli(capsys, *argv):
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


# --- dual encoder -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dual_run(data, tmp_path_factory):
    data_dir, source_dir, _ = data
    out = tmp_path_factory.mktemp("dual") / "run"
    overrides = {"conv_filters": (4,), "image_units": 8, "embed_dim": 8, "rnn_units": (8,), "projection_dim": 6}
    result = zoo.train("cnn_lstm_dual_encoder", data="describe", out=out, data_dir=data_dir, source_dir=source_dir,
                       max_length=8, model_overrides=overrides, **TRAIN)
    return out, result.model


def test_dual_encoder_run_exports_zero_shot_over_its_data_configs_prompts(dual_run, data, tmp_path):
    run, model = dual_run
    path = export_run(run, tmp_path / "export")
    metadata = read_metadata(path)
    prompts = pipeline.class_prompts("describe")
    assert metadata["kind"] == "dual_encoder" and metadata["class_prompts"] == prompts
    loaded = tf.saved_model.load(path)
    images = _images(4)
    tokenizer = Tokenizer(data[2], 8)
    classes = zoo.models.class_embeddings(model, [tokenizer(tf.constant(p)).numpy() for p in prompts.values()])
    image_embeddings = zoo.models.embed_images(model, images.astype("float32") / 255.0)
    out = loaded.signatures["serving_default"](image=tf.constant(images))
    np.testing.assert_array_equal(out["label"], zoo.models.zero_shot_classify(image_embeddings, classes))
    np.testing.assert_allclose(loaded.signatures["embed_image"](image=tf.constant(images))["embedding"],
                               image_embeddings, atol=1e-5)
    texts = ["a thin seven leaning left", "zebra"]
    np.testing.assert_allclose(loaded.signatures["embed_text"](text=tf.constant(texts))["embedding"],
                               zoo.models.embed_texts(model, tokenizer(tf.constant(texts)).numpy()), atol=1e-5)
    with pytest.raises(ValueError, match="format='onnx': a dual encoder exports as 'tf_saved_model' only"):
        export_run(run, tmp_path / "onnx", "onnx")
    assert not (tmp_path / "onnx").exists()


def test_dual_encoder_run_through_the_command_line(dual_run, tmp_path, capsys):
    run, model = dual_run
    out = tmp_path / "export"
    lines = _cli(capsys, "export", str(run), "--out", str(out))
    assert lines[1:] == [
        "  inputs:  image uint8[batch, 28, 28, 1]",
        "  outputs: probabilities, label, class_name (zero-shot over 10 classes, 8100 prompts)",
        "  also:    embed_image (image -> embedding float32[batch, 6]), embed_text (text string[batch] -> "
        "embedding float32[batch, 6])",
    ]
    image = _images(1, seed=3)
    answer = json.loads("\n".join(_cli(capsys, "predict", str(out), "--image", str(_png(tmp_path, image[0])),
                                       "--json")))
    served = tf.saved_model.load(str(out)).signatures["serving_default"](image=tf.constant(image))
    assert answer["answer"] == served["class_name"].numpy()[0].decode()
    assert sorted(answer["probabilities"]) == sorted(pipeline.class_names("describe"))
    assert main(["predict", str(out), "--image", str(tmp_path / "digit.png"), "--text", "seven"]) == 2
    assert "drop --text" in capsys.readouterr().err


def test_dual_encoder_of_a_config_without_prompts_needs_them(dual_run, tmp_path, capsys):
    run, _ = dual_run
    config = json.loads((run / "config.json").read_text())
    _rewrite_config(run, {**config, "data": "vqa"})
    try:
        with pytest.raises(ValueError, match=r"'vqa' has no zero-shot prompts.*class_prompts=\{class name"):
            export_run(run, tmp_path / "a")
        prompts = {"seven": ["a seven"], "one": ["a one", "the digit one"]}
        assert read_metadata(export_run(run, tmp_path / "b", class_prompts=prompts))["class_prompts"] == prompts
        # The command line says its flag, and takes the prompts from a JSON file.
        assert main(["export", str(run), "--out", str(tmp_path / "c")]) == 2
        assert "--prompts FILE.json" in capsys.readouterr().err
        (tmp_path / "prompts.json").write_text(json.dumps(prompts))
        assert main(["export", str(run), "--out", str(tmp_path / "d"), "--prompts", str(tmp_path / "prompts.json")]) == 0
        assert read_metadata(tmp_path / "d")["class_prompts"] == prompts
        (tmp_path / "bad.json").write_text('["a seven"]')
        assert main(["export", str(run), "--out", str(tmp_path / "e"), "--prompts", str(tmp_path / "bad.json")]) == 2
        assert "expected a JSON object {class name: [prompt, ...]}, got list" in capsys.readouterr().err
        assert not (tmp_path / "e").exists()
    finally:
        _rewrite_config(run, config)


def _rewrite_config(run, config):
    """Rewrites config.json and its hash in the marker, as if the run had been trained so."""
    (run / "config.json").write_text(json.dumps(config))
    marker = json.loads((run / "metrics.json").read_text())
    marker["artifacts"]["config.json"] = runfiles.file_sha256(run / "config.json")
    (run / "metrics.json").write_text(json.dumps(marker))


# --- captioner --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caption_run(data, tmp_path_factory):
    from zoo.demo.captioning import teacher_forced_fn

    data_dir, source_dir, vocabulary = data
    out = tmp_path_factory.mktemp("caption") / "run"
    # Short captions: the SavedModel's beam search runs the model once per position.
    overrides = {"vocab_size": len(vocabulary), "max_length": 5, "conv_filters": (4, 8), "image_units": 8,
                 "embed_dim": 8, "rnn_units": (8,), "attention_dim": 8, "num_heads": 2}
    fn = teacher_forced_fn(vocabulary, batch_size=8, seed=0, split=SPLIT, data_dir=data_dir, source_dir=source_dir,
                           max_length=5)
    result = zoo.train("cnn_lstm_captioner", dataset_fn=fn, vocabulary=vocabulary, out=out, model_overrides=overrides,
                       **{k: v for k, v in TRAIN.items() if k not in ("train_split", "validation_split")})
    return out, result.model, vocabulary


def test_captioner_run_exports_the_python_decoders_captions(caption_run, tmp_path, capsys):
    run, model, vocabulary = caption_run
    with pytest.raises(ValueError, match="format='litert': a captioner exports as 'tf_saved_model' only"):
        export_run(run, tmp_path / "litert", "litert")
    out = tmp_path / "export"
    lines = _cli(capsys, "export", str(run), "--out", str(out))
    assert lines[1:] == [
        "  inputs:  image uint8[batch, 28, 28, 1]",
        "  outputs: caption, token_ids (greedy)",
        "  also:    generate (image, beam_width int32 in [1, 16] -> caption, token_ids; beam search)",
    ]
    images = _images(3, seed=1)
    expected = zoo.models.generate_captions(model, images.astype("float32") / 255.0, vocabulary, beam_width=2)
    generated = tf.saved_model.load(str(out)).signatures["generate"](image=tf.constant(images),
                                                                    beam_width=tf.constant(2))
    assert [c.decode() for c in generated["caption"].numpy()] == expected
    greedy = zoo.models.generate_captions(model, images[:1].astype("float32") / 255.0, vocabulary)[0]
    assert _cli(capsys, "predict", str(out), "--image", str(_png(tmp_path, images[0]))) == [f"caption: {greedy}"]


# --- KerasHub text backbone -------------------------------------------------------------------------

TEXT = {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32, "max_sequence_length": 16}


@pytest.fixture(scope="module")
def backbone_run(data, tmp_path_factory):
    data_dir, source_dir, vocabulary = data
    root = tmp_path_factory.mktemp("backbone")
    words = vocabulary[2:]
    text = {**TEXT, "vocabulary_size": len(words) + 5}
    save_tower_presets(zoo.build("bert_resnet_concat_tiny", text_config=text, max_length=12, head_units=8,
                                 num_classes=10), root / "presets", tokenizer=word_tokenizer(words))
    result = zoo.train("bert_resnet_concat_tiny", data="describe", out=root / "run", data_dir=data_dir,
                       source_dir=source_dir, max_length=12,
                       model_overrides={"head_units": 8, "pretrained": str(root / "presets")}, **TRAIN)
    return root / "run", result.model, root / "presets" / "text"


def test_backbone_run_keeps_its_tokenizer_and_exports_with_it(backbone_run, tmp_path, capsys):
    run, model, source = backbone_run
    config = json.loads((run / "config.json").read_text())
    assert config["text_preset"] == "text_preset" and not (run / "vocabulary.txt").exists()
    artifacts = json.loads((run / "metrics.json").read_text())["artifacts"]
    assert {"text_preset/config.json", "text_preset/tokenizer.json"} <= set(artifacts)
    assert not any(name.endswith(".weights.h5") for name in artifacts)

    texts = ["a thin seven leaning left", "the digit 7, bold", ""]
    kept = BackboneTokenizer(run / "text_preset", 12)(tf.constant(texts))
    trained = BackboneTokenizer(source, 12)(tf.constant(texts))
    for name in trained:
        np.testing.assert_array_equal(kept[name], trained[name])

    out = tmp_path / "export"
    lines = _cli(capsys, "export", str(run), "--out", str(out))
    assert lines[1:3] == ["  inputs:  image uint8[batch, 28, 28, 1], text string[batch]",
                          "  outputs: probabilities, label, class_name"]
    images = _images(3, seed=2)
    served = tf.saved_model.load(str(out)).signatures["serving_default"](image=tf.constant(images),
                                                                       text=tf.constant(texts))
    expected = model({"image": images.astype("float32") / 255.0, **{k: v.numpy() for k, v in kept.items()}},
                     training=False)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    answer = json.loads("\n".join(_cli(capsys, "predict", str(out), "--image", str(_png(tmp_path, images[0])),
                                       "--text", texts[0], "--json")))
    assert answer["index"] == int(np.argmax(expected[0]))


def test_a_changed_or_added_text_preset_file_is_refused(backbone_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(backbone_run[0], run)
    vocabulary = run / "text_preset" / "assets" / "tokenizer" / "vocabulary.txt"
    original = vocabulary.read_bytes()
    vocabulary.write_bytes(original.replace(b"seven", b"eleven"))
    with pytest.raises(RunIncomplete, match=r"text_preset/assets/tokenizer/vocabulary.txt is not the file metrics"):
        runfiles.verify_run(run)
    with pytest.raises(RunIncomplete, match="vocabulary.txt is not the file metrics.json describes"):
        export_run(run, tmp_path / "export")
    vocabulary.write_bytes(original)
    (run / "text_preset" / "preprocessor.json").write_text("{}")
    with pytest.raises(RunIncomplete, match=r"text_preset/preprocessor.json is not among the files"):
        runfiles.verify_run(run)
    os.remove(run / "text_preset" / "preprocessor.json")
    runfiles.verify_run(run)
    assert not (tmp_path / "export").exists()
