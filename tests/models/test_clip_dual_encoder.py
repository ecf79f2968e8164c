"""The dual encoder on KerasHub's CLIP encoders: offline build, training on describe, padding, presets, export."""

import os
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo.testing import random_inputs
from zoo.towers.pretrained import PretrainedWeightsError

# A CLIP of a few thousand parameters: 4x4 patches of 7 pixels, one block per tower.
TINY = {"image_config": {"patch_size": 7, "hidden_dim": 16, "num_layers": 1, "num_heads": 2, "intermediate_dim": 32},
        "text_config": {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "intermediate_dim": 32,
                        "max_sequence_length": 16},
        "projection_dim": 8, "vocab_size": 40, "max_length": 8}


def _block_macs(length, width, intermediate):
    """One CLIP encoder block by hand: q, k, v and output projections, scores and mixing, feed-forward."""
    return 4 * length * width * width + 2 * length * length * width + 2 * length * width * intermediate


def test_default_is_a_small_clip_built_offline():
    model = zoo.build("clip_dual_encoder")
    assert type(model.get_layer("image_backbone")).__name__ == "CLIPVisionEncoder"
    assert type(model.get_layer("text_backbone")).__name__ == "CLIPTextEncoder"
    assert sorted(t.name for t in model.inputs) == ["image", "token_ids"]
    assert model.output.shape == (None, 2 * 64 + 2)
    # Each patch has its own position (KerasHub leaves a fresh encoder's position ids at zero).
    np.testing.assert_array_equal(model.get_layer("image_backbone").embedding.position_ids, [np.arange(50)])
    card = zoo.describe("clip_dual_encoder")
    assert card["parameters"] == model.count_params()
    # 49 patches of 4x4x3 pixels plus a class token, two blocks of 64; 32 words, two blocks of 64; two projections.
    patches = 49 * 4 * 4 * 3 * 64
    expected = patches + 2 * _block_macs(50, 64, 128) + 2 * _block_macs(32, 64, 128) + 2 * 64 * 64
    assert card["macs_per_example"] == expected
    assert "clip_vit_base_patch16" in card["weights"]["image"] and "not its word embeddings" in card["weights"]["text"]


def test_text_embedding_ignores_padding_and_reads_every_word():
    short = zoo.build("clip_dual_encoder", **{**TINY, "max_length": 8})
    long = zoo.build("clip_dual_encoder", **{**TINY, "max_length": 13})
    long.set_weights(short.get_weights())
    ids = np.array([[5, 9, 3, 0, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0, 0, 0], [2, 3, 4, 5, 6, 7, 8, 9]], "int32")
    embedded = zoo.models.embed_texts(short, ids)
    np.testing.assert_allclose(zoo.models.embed_texts(long, np.pad(ids, ((0, 0), (0, 5)))), embedded, atol=1e-6)
    # Alone or beside other texts, the same words give the same embedding.
    np.testing.assert_allclose(zoo.models.embed_texts(short, ids[:1]), embedded[:1], atol=1e-6)
    # The pooled last word has read the words before it (causal attention), so each of them counts.
    for changed in ([6, 9, 3], [5, 9, 4]):
        other = zoo.models.embed_texts(short, np.array([changed + [0] * 5], "int32"))
        assert np.abs(other - embedded[:1]).max() > 1e-3


@pytest.mark.slow
def test_trains_on_describe_through_zoo_train(tmp_path, describe_dir):
    data_dir, source_dir = describe_dir
    # The vocabulary size comes from the data; the text length is checked against the encoder before that.
    overrides = {**{k: v for k, v in TINY.items() if k != "vocab_size"}, "max_length": 12}
    result = zoo.train("clip_dual_encoder", out=tmp_path / "run", data="describe", data_dir=data_dir,
                       source_dir=source_dir, validation_split=None, max_length=12, model_overrides=overrides,
                       epochs=2, batch_size=16, learning_rate=1e-3, seed=0, checkpoint_every=0, verbose=0)
    losses = [epoch["loss"] for epoch in result.history]
    assert len(losses) == 2 and np.isfinite(losses).all()
    assert losses[-1] < losses[0], losses
    vocabulary = (tmp_path / "run" / "vocabulary.txt").read_text().splitlines()
    assert result.model.get_layer("text_backbone").vocabulary_size == len(vocabulary)


def _tiny_clip(vocabulary_size):
    import keras_hub

    vision = keras_hub.models.CLIPVisionEncoder(patch_size=8, hidden_dim=16, num_layers=1, num_heads=2,
                                                intermediate_dim=32, image_shape=(16, 16, 3))
    text = keras_hub.models.CLIPTextEncoder(vocabulary_size=vocabulary_size, embedding_dim=16, hidden_dim=16,
                                            num_layers=1, num_heads=2, intermediate_dim=32, max_sequence_length=12)
    return keras_hub.models.CLIPBackbone(vision, text, projection_dim=8)


def test_local_preset_gives_the_saved_encoders_outputs_exactly(tmp_path):
    saved = _tiny_clip(vocabulary_size=40)
    saved.save_to_preset(tmp_path / "clip")
    model = zoo.build("clip_dual_encoder", pretrained=str(tmp_path / "clip"), vocab_size=40, max_length=8,
                      projection_dim=8)
    inputs = random_inputs(model, batch_size=3, seed=2)
    # The preset's 16x16 vision encoder: the adapter resizes the 28x28 digits to it.
    images = model.get_layer("image_adapter")(inputs["image"])
    assert images.shape == (3, 16, 16, 3)
    pairs = [(model.get_layer("image_backbone"), saved.vision_encoder, {"images": images}),
             (model.get_layer("text_backbone"), saved.text_encoder, {"token_ids": inputs["token_ids"]})]
    for ours, theirs, feed in pairs:
        np.testing.assert_array_equal(np.asarray(ours(feed)), np.asarray(theirs(feed)))

    # Another vocabulary: all of the text encoder but its word embeddings loads.
    with pytest.warns(UserWarning, match=r"40 token embeddings do not fit vocab_size=30"):
        other = zoo.build("clip_dual_encoder", pretrained=str(tmp_path / "clip"), vocab_size=30, max_length=8)
    text = other.get_layer("text_backbone")
    for ours, theirs in zip(text.weights, saved.text_encoder.weights, strict=True):
        if "token_embedding" not in ours.path:
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert text.embedding.token_embedding.input_dim == 30


def test_a_whole_model_weights_file_loads_exactly(tmp_path):
    source = zoo.build("clip_dual_encoder", **TINY)
    path = str(tmp_path / "model.weights.h5")
    source.save_weights(path)
    loaded = zoo.build("clip_dual_encoder", **TINY, pretrained=path)
    inputs = random_inputs(source, batch_size=2, seed=5)
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), np.asarray(source(inputs)))


def test_pretrained_true_fails_fast_offline_naming_what_it_fetched():
    start = time.monotonic()
    with pytest.raises(PretrainedWeightsError, match=r"'clip_vit_base_patch16'.*kaggle.*pretrained=DIR"):
        zoo.build("clip_dual_encoder", pretrained=True)
    assert time.monotonic() - start < 60


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"preset": "clip_huge"}, r"preset='clip_huge'.*clip_vit_base_patch16"),
        ({"pretrained": "/no/such/preset"}, r"pretrained='/no/such/preset'"),
        ({"image_config": {"layers": 2}}, r"image_config=\{'layers': 2\}.*keys among"),
        ({"text_config": {"hidden_dim": 30, "num_heads": 4}}, r"text_config=.*divisible by num_heads=4"),
        ({"image_config": {"patch_size": 29}}, r"image_config=.*patch_size of at most image_size=28"),
        ({"max_length": 80}, r"max_length=80.*max_sequence_length=77"),
        ({"text_config": {"num_layers": 1}, "pretrained": True}, r"text_config=.*a config is for random initialisation"),
    ],
)
def test_bad_overrides_are_refused_before_building(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("clip_dual_encoder", **overrides)


@pytest.mark.slow
def test_dual_encoder_export_equals_keras(tmp_path):
    import tensorflow as tf

    from zoo.data import Tokenizer
    from zoo.export.dual_encoder import export_dual_encoder

    vocabulary = ["", "[UNK]", "a", "thick", "thin", "seven", "one", "left", "right"]
    keras.utils.set_random_seed(3)
    model = zoo.build("clip_dual_encoder", **{**TINY, "vocab_size": len(vocabulary), "max_length": 6})
    prompts = {"one": ["a thin one", "a thick one"], "seven": ["a thin seven", "a seven left"]}
    loaded = tf.saved_model.load(export_dual_encoder(model, tmp_path / "export", vocabulary=vocabulary,
                                                     class_prompts=prompts))
    images = np.random.default_rng(1).integers(0, 256, size=(3, 28, 28, 1)).astype("uint8")
    image_emb = zoo.models.embed_images(model, images.astype("float32") / 255.0)
    np.testing.assert_allclose(loaded.signatures["embed_image"](image=tf.constant(images))["embedding"], image_emb,
                               atol=1e-5)
    texts = np.array([b"a thick seven", b"one", b""])
    ids = Tokenizer(vocabulary, 6)(tf.constant(texts)).numpy()
    np.testing.assert_allclose(loaded.signatures["embed_text"](text=tf.constant(texts))["embedding"],
                               zoo.models.embed_texts(model, ids), atol=1e-5)
    tokenizer = Tokenizer(vocabulary, 6)
    classes = zoo.models.class_embeddings(model, [tokenizer(tf.constant(p)).numpy() for p in prompts.values()])
    out = loaded.signatures["serving_default"](image=tf.constant(images))
    np.testing.assert_array_equal(out["label"], zoo.models.zero_shot_classify(image_emb, classes))


@pytest.fixture(scope="module")
def describe_dir(tmp_path_factory):
    """The describe config prepared from the builder's dummy MNIST files (55 training images), and those files."""
    from zoo.datasets.mnist_text import mnist_files as mnist
    from zoo.datasets.mnist_text import mnist_text_dataset_builder as builder_module

    dummy = Path(os.fspath(builder_module.Builder.code_path.parent / "dummy_data"))
    checksums = {path.name: mnist.file_info(path) for path in dummy.iterdir() if path.is_file()}
    data_dir = tmp_path_factory.mktemp("describe")
    builder_module.Builder(data_dir=data_dir, config="describe", source_dir=dummy,
                           source_checksums=checksums).download_and_prepare()
    return os.fspath(data_dir), os.fspath(dummy)
