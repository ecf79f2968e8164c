"""Models on pretrained towers: local presets, weights files, offline failure, the seed system."""

import time

import numpy as np
import pytest

import zoo
from zoo.models.pretrained import save_tower_presets
from zoo.testing import random_inputs
from zoo.towers.pretrained import PretrainedWeightsError

# A BERT of a few thousand parameters: the tests write their own presets from it.
TINY_TEXT = {"vocabulary_size": 60, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32,
             "max_sequence_length": 16}
TINY = {"text_config": TINY_TEXT, "max_length": 8, "head_units": 8}


def _outputs(model, inputs, layer):
    backbone = model.get_layer(layer)
    feeds = {k: v for k, v in inputs.items() if k in {t.name for t in backbone.inputs}}
    if layer == "image_backbone":
        feeds = model.get_layer("image_adapter")(inputs["image"])
    outputs = backbone(feeds, training=False)
    leaves = outputs.values() if isinstance(outputs, dict) else [outputs]
    return [np.asarray(leaf) for leaf in leaves]


def test_local_presets_load_and_give_the_saved_outputs_exactly(tmp_path):
    source = zoo.build("bert_resnet_gated_tiny", **TINY)
    save_tower_presets(source, tmp_path / "presets")
    assert sorted(p.name for p in (tmp_path / "presets").iterdir()) == ["image", "text"]
    inputs = random_inputs(source, batch_size=2, seed=4)

    loaded = zoo.build("bert_resnet_gated_tiny", max_length=8, head_units=8, pretrained=str(tmp_path / "presets"))
    for layer in ("text_backbone", "image_backbone"):
        for got, expected in zip(_outputs(loaded, inputs, layer), _outputs(source, inputs, layer), strict=True):
            np.testing.assert_array_equal(got, expected)
    # One tower alone, the other random.
    text_only = zoo.build("bert_resnet_gated_tiny", max_length=8, head_units=8,
                          text_pretrained=str(tmp_path / "presets" / "text"))
    assert text_only.get_layer("text_backbone").count_params() == source.get_layer("text_backbone").count_params()


def test_a_whole_model_weights_file_loads_exactly(tmp_path):
    source = zoo.build("bert_resnet_concat_tiny", **TINY)
    path = str(tmp_path / "model.weights.h5")
    source.save_weights(path)
    loaded = zoo.build("bert_resnet_concat_tiny", **TINY, pretrained=path)
    inputs = random_inputs(source, batch_size=2, seed=5)
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), np.asarray(source(inputs)))


def test_pretrained_true_fails_fast_offline_naming_what_it_fetched():
    start = time.monotonic()
    with pytest.raises(PretrainedWeightsError, match=r"'bert_tiny_en_uncased'.*text_pretrained=DIR"):
        zoo.build("bert_resnet_concat_tiny", pretrained=True)
    with pytest.raises(PretrainedWeightsError, match=r"MobileNetV2.*storage\.googleapis\.com.*image_pretrained=PATH"):
        zoo.build("bert_resnet_concat_tiny", image_backbone="mobilenet_v2", image_pretrained=True, **TINY)
    assert time.monotonic() - start < 60


def test_bad_backbone_names_and_paths_are_refused_before_building():
    with pytest.raises(ValueError, match=r"text_backbone='bert_huge'.*bert_tiny_en_uncased"):
        zoo.build("bert_resnet_concat_tiny", text_backbone="bert_huge")
    with pytest.raises(ValueError, match=r"pretrained='/no/such/preset'"):
        zoo.build("bert_resnet_concat_tiny", pretrained="/no/such/preset")
    with pytest.raises(ValueError, match=r"image_size=16: expected an integer >= 32 for resnet50"):
        zoo.build("bert_resnet50_concat", image_size=16)
    with pytest.raises(ValueError, match=r"text_config=.*keys among"):
        zoo.build("bert_resnet_concat_tiny", text_config={"layers": 2})
    with pytest.raises(ValueError, match=r"text_config=.*a config is for random initialisation"):
        zoo.build("bert_resnet_concat_tiny", text_config={"num_layers": 1}, pretrained=True)


def test_card_names_the_weights_it_can_load():
    card = zoo.describe("bert_resnet_concat_tiny", **TINY)
    assert "Apache-2.0" in card["weights"]["text"]
    assert [spec["name"] for spec in card["inputs"]] == ["image", "padding_mask", "segment_ids", "token_ids"]


def test_distilbert_tower_pools_by_masked_mean():
    config = {k: v for k, v in TINY_TEXT.items()}
    model = zoo.build("bert_resnet_concat_tiny", text_backbone="distil_bert_base_en_uncased", text_config=config,
                      max_length=8, head_units=8)
    assert sorted(t.name for t in model.inputs) == ["image", "padding_mask", "token_ids"]
    assert model.get_layer("text_pool") is not None


@pytest.mark.slow
def test_the_seed_system_at_its_defaults():
    """BERT-base (768) and ResNet50 (2048) pooled, concatenated, Dense(512, relu), head (134.5 M parameters)."""
    model = zoo.build("bert_resnet50_concat")
    assert model.get_layer("text_backbone").count_params() == 109_482_240
    assert model.get_layer("image_backbone").count_params() == 23_587_712
    assert model.get_layer("fusion_concat").output.shape == (None, 768 + 2048)
    assert model.get_layer("head_hidden").units == 512
    card = zoo.describe("bert_resnet50_concat")
    assert card["parameters"] == model.count_params() == 109_482_240 + 23_587_712 + (2816 * 512 + 512) + 5130
    outputs = np.asarray(model(random_inputs(model, batch_size=2), training=False))
    np.testing.assert_allclose(outputs.sum(-1), 1.0, rtol=1e-5)
