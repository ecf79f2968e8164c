import gc

import keras
import pytest

import zoo
from zoo import registry

CARD_FIELDS = {
    "name", "description", "origin", "modalities", "fusion", "inputs", "outputs",
    "hyperparameters", "parameters", "macs_per_example", "demo_accuracy", "weights",
}


@pytest.fixture
def scratch_registry(monkeypatch):
    """A registry copy, so test registrations do not leak into other tests."""
    zoo.list_models()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_catalog_covers_the_seed_systems():
    names = zoo.list_models()
    assert len(names) >= 8
    for required in ["cnn_seed", "lstm_seed", "cnn_lstm_concat_seed", "cnn_lstm_wsum_fixed", "cnn_lstm_wsum_learned",
                     "cnn_lstm_gated", "cnn_lstm_film", "cnn_lstm_xattn", "cnn_lstm_late", "cnn_lstm_multitask"]:
        assert required in names
    assert names == sorted(names)


def test_list_models_wildcards():
    assert zoo.list_models("cnn_lstm_wsum_*") == ["cnn_lstm_wsum_fixed", "cnn_lstm_wsum_learned"]
    assert zoo.list_models("nothing*") == []


def test_duplicate_name_raises(scratch_registry):
    @zoo.register_model("scratch_model")
    def first(units: int = 2):
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(units)])

    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model("scratch_model")(first)
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model("cnn_seed")(first)


def test_user_registered_model_builds_with_validated_overrides(scratch_registry):
    @zoo.register_model("scratch_dense", modalities=("image",))
    def scratch(units: int = 2, activation: str = "relu"):
        """A one-layer test model."""
        inputs = keras.Input((3,), name="image")
        return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(inputs))

    assert zoo.build("scratch_dense", units=5).output.shape == (None, 5)
    assert zoo.describe("scratch_dense")["description"] == "A one-layer test model."
    with pytest.raises(ValueError, match=r"units='5'.*expected an int"):
        zoo.build("scratch_dense", units="5")


def test_builder_without_defaults_is_rejected(scratch_registry):
    with pytest.raises(ValueError, match="needs a default"):
        zoo.register_model("scratch_bad")(lambda units: None)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"Unknown model 'cnn_lstm_concatt'.*Did you mean 'cnn_lstm_concat'"):
        zoo.build("cnn_lstm_concatt")


def test_unrelated_name_gets_no_suggestion():
    with pytest.raises(ValueError, match=r"Unknown model 'nonsense'\. `zoo") as info:
        zoo.build("nonsense")
    assert "Did you mean" not in str(info.value)


def test_list_models_refuses_a_pattern_that_is_not_a_string():
    with pytest.raises(TypeError, match=r"list_models\(pattern=123\): expected a wildcard string .* got int"):
        zoo.list_models(123)


def test_unknown_override_key_names_it_and_suggests():
    with pytest.raises(ValueError, match=r"Unknown hyperparameter 'num_head'=4 .*Did you mean 'num_heads'"):
        zoo.build("cnn_lstm_xattn", num_head=4)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"vocab_size": "big"}, r"Invalid type .*vocab_size='big'.*expected an int, got str"),
        ({"vocab_size": 2.5}, r"Invalid type .*vocab_size=2.5.*expected an int"),
        ({"batch_norm": 1}, r"batch_norm=1.*expected a bool"),
        ({"rnn_cell": "rnn"}, r"Invalid value .*rnn_cell='rnn'.*expected one of 'lstm', 'gru', got 'rnn'"),
        ({"rnn_cell": 3}, r"Invalid type .*rnn_cell=3.*expected one of 'lstm', 'gru', got int"),
        ({"conv_filters": 32}, r"Invalid type .*conv_filters=32.*expected a sequence of ints, got int"),
        ({"conv_filters": (8, "a")}, r"Invalid type .*expected a sequence of ints, got str at position 1"),
        ({"image_shape": (28, 28)},
         r"Invalid length .*image_shape=\(28, 28\).*expected a sequence of 3 ints, got 2 items"),
    ],
)
def test_wrong_type_is_rejected(override, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("cnn_lstm_xattn", **override)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"num_heads": 3}, r"attention_dim=128: expected a multiple of num_heads=3"),
        ({"vocab_size": 2}, r"vocab_size=2: expected an integer >= 3"),
        ({"head_dropout": 1.0}, r"head_dropout=1.0: expected a rate in \[0, 1\)"),
        ({"image_shape": (6, 6, 1)}, r"image_shape=\(6, 6, 1\): expected an image large enough"),
        ({"num_classes": 1}, r"num_classes=1: expected an integer >= 2 for classification"),
        ({"rnn_units": ()}, r"rnn_units=\(\): expected a non-empty sequence"),
    ],
)
def test_invalid_value_is_rejected_before_any_layer(override, message, monkeypatch):
    created = []
    original_init = keras.layers.Layer.__init__

    def spy(self, *args, **kwargs):
        created.append(type(self).__name__)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Layer, "__init__", spy)
    with pytest.raises(ValueError, match=message):
        zoo.build("cnn_lstm_xattn", **override)
    assert created == []


def test_none_override_keeps_default():
    assert zoo.registry.resolve_hyperparameters("cnn_lstm_xattn", num_heads=None)["num_heads"] == 8
    model = zoo.build("cnn_lstm_concat", vocab_size=None, max_length=None)
    assert model.get_layer("text_embedding").input_dim == 1000


def test_int_accepted_for_float_and_lists_for_tuples():
    hp = zoo.registry.resolve_hyperparameters("cnn_lstm_wsum_fixed", alpha=1, conv_filters=[8, 16])
    assert hp["alpha"] == 1.0 and isinstance(hp["alpha"], float)
    assert hp["conv_filters"] == (8, 16)


def test_card_fields_and_values():
    card = zoo.describe("cnn_lstm_xattn")
    assert set(card) == CARD_FIELDS
    assert card["modalities"] == ["image", "text"]
    assert card["fusion"] == "attention"
    assert card["inputs"] == [
        {"name": "image", "shape": [None, 28, 28, 1], "dtype": "float32"},
        {"name": "token_ids", "shape": [None, 32], "dtype": "int32"},
    ]
    assert card["outputs"] == [{"name": "head_probabilities", "shape": [None, 10], "dtype": "float32"}]
    assert card["hyperparameters"]["num_heads"] == 8
    assert zoo.describe("cnn_seed")["fusion"] is None


def test_card_macs_of_the_seed_cnn_match_hand_count():
    # conv1 26*26*9*32 + conv2 11*11*(9*32)*64 + dense 1600*128 + head 128*10
    expected = 26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 128 + 128 * 10
    assert zoo.describe("cnn_seed")["macs_per_example"] == expected


def test_describe_keeps_no_built_model_alive():
    """Listing the catalog must not hold every model's weights in memory."""
    card = zoo.describe("cnn_seed", num_classes=7)
    card["inputs"][0]["shape"].append("edited")
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, keras.Model) and o.name == "cnn_seed"
             and o.outputs[0].shape[-1] == 7]
    assert alive == []
    # The cached figures are not the caller's to edit.
    assert zoo.describe("cnn_seed", num_classes=7)["inputs"] == [{"name": "image", "shape": [None, 28, 28, 1],
                                                                "dtype": "float32"}]


def test_card_reflects_overrides():
    small = zoo.describe("cnn_lstm_concat", vocab_size=50, embed_dim=8, rnn_units=(8,))
    assert small["hyperparameters"]["vocab_size"] == 50
    assert small["parameters"] == zoo.build("cnn_lstm_concat", vocab_size=50, embed_dim=8, rnn_units=(8,)).count_params()
