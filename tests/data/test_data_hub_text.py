"""Text through a KerasHub backbone's tokenizer: in tf.data and in zoo.train on real pipeline data."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.data.hub_text import BackboneTokenizer, word_tokenizer
from zoo.models.pretrained import save_tower_presets

WORDS = ["is", "it", "even", "odd", "the", "digit", "a", "what", "greater", "than", "this", "zero", "one", "two",
         "three", "four", "five", "six", "seven", "eight", "nine", "?"]
TEXT = {"vocabulary_size": len(WORDS) + 5, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32,
        "max_sequence_length": 16}


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("preset")
    model = zoo.build("bert_resnet_concat_tiny", text_config=TEXT, max_length=12, head_units=8, num_classes=12)
    save_tower_presets(model, directory, tokenizer=word_tokenizer(WORDS))
    return directory


def test_tokenizer_gives_the_backbones_inputs(preset):
    tokenizer = BackboneTokenizer(preset / "text", max_length=8)
    out = {k: v.numpy() for k, v in tokenizer(tf.constant(["Is it even?", "", "zebra"])).items()}
    assert sorted(out) == ["padding_mask", "segment_ids", "token_ids"]
    # [CLS] is it even ? [SEP], padding 0; an empty text is [CLS] [SEP]; unknown words are [UNK] (1).
    np.testing.assert_array_equal(out["token_ids"][0], [2, 5, 6, 7, 26, 3, 0, 0])
    np.testing.assert_array_equal(out["token_ids"][1], [2, 3, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["token_ids"][2], [2, 1, 3, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["padding_mask"], (out["token_ids"] != 0).astype("int32"))
    assert tokenizer.vocab_size == len(WORDS) + 5
    with pytest.raises(ValueError, match=r"\['\[PAD\]'\] are special tokens"):
        word_tokenizer(["[PAD]", "is"])


def test_pipeline_tokenizes_with_the_preset_in_the_graph(preset, prepared_dir, dummy_dir):
    tokenizer = BackboneTokenizer(preset / "text", max_length=12)
    features, _ = next(iter(zoo.data.make_dataset("vqa", "train", data_dir=prepared_dir, source_dir=dummy_dir,
                                                  batch_size=4, max_length=12, tokenizer=tokenizer, shuffle=False,
                                                  deterministic=True)))
    raw, _ = next(iter(zoo.data.make_dataset("vqa", "train", data_dir=prepared_dir, source_dir=dummy_dir,
                                             batch_size=4, mode="raw", shuffle=False, deterministic=True)))
    eager = tokenizer(raw["text"])
    for name in ("token_ids", "padding_mask", "segment_ids"):
        assert features[name].dtype == tf.int32 and features[name].shape == (4, 12)
        np.testing.assert_array_equal(features[name].numpy(), eager[name].numpy())


@pytest.mark.slow
def test_zoo_train_reads_text_through_the_models_preset(preset, prepared_dir, dummy_dir, tmp_path):
    overrides = {"head_units": 8, "pretrained": str(preset)}
    result = zoo.train("bert_resnet_concat_tiny", data="vqa", out=tmp_path / "run", data_dir=prepared_dir,
                       source_dir=dummy_dir, max_length=12, model_overrides=overrides, epochs=1, batch_size=16,
                       verbose=0, freeze=("text_backbone",))
    assert result.step == 4 and np.isfinite(result.metrics["val_loss"])
    assert sorted(t.name for t in result.model.inputs) == ["image", "padding_mask", "segment_ids", "token_ids"]
    with pytest.raises(ValueError, match=r"randomly initialised\) has none: pass text_pretrained=DIR"):
        zoo.train("bert_resnet_concat_tiny", data="vqa", out=tmp_path / "random", data_dir=prepared_dir,
                  source_dir=dummy_dir, max_length=12, model_overrides={"text_config": TEXT, "max_length": 12}, epochs=1,
                  verbose=0)
