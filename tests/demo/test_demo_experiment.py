"""The demo's grids and recipes: every row names a registered model with valid overrides."""

import pytest
import tensorflow as tf

import zoo
from zoo.demo import datacontext, experiment, grids, recipes
from zoo.demo.datacontext import DataContext
from zoo.demo.grids import make_entry

VQA = DataContext("vqa", [f"c{i}" for i in range(12)], ["", "[UNK]", "is", "it", "even"], 7)
CAPTION = DataContext("caption", [f"d{i}" for i in range(10)], ["", "[UNK]", "a", "digit"], 5)
DIGITS = DataContext("digits", [f"d{i}" for i in range(10)], None, None)
DATA = {"vqa": VQA, "caption": CAPTION, "digits": DIGITS}


@pytest.mark.parametrize("name", list(grids.GRIDS))
def test_every_row_resolves_to_valid_hyperparameters(name):
    for entry in grids.grid(name):
        overrides = experiment.resolved_overrides(entry, DATA[entry.config])
        resolved = zoo.registry.resolve_hyperparameters(entry.model, **overrides)
        if "num_classes" in resolved:
            assert resolved["num_classes"] == len(DATA[entry.config].class_names)
        if "vocab_size" in resolved:
            assert resolved["vocab_size"] == len(DATA[entry.config].vocabulary)
            assert resolved["max_length"] == DATA[entry.config].max_length


def test_full_grid_has_every_fusion_model_on_both_text_configs_and_both_baselines():
    rows = grids.grid("full")
    # The captioner generates text and the dual encoder embeds: neither is a classifier to compare.
    fusion_models = set(zoo.list_models("cnn_lstm_*")) - {"cnn_lstm_captioner", "cnn_lstm_dual_encoder"}
    for config in ("vqa", "caption"):
        roles = {e.model: e.role for e in rows if e.config == config}
        assert {m for m, role in roles.items() if role == "fusion"} == fusion_models
        assert roles["cnn_image"] == "image" and roles["rnn_text"] == "text"
    digits_recipes = {e.recipe for e in rows if e.config == "digits" and e.model == "cnn_seed"}
    assert digits_recipes == {"seed", recipes.DIGITS_RECIPE}


def test_a_newly_registered_fusion_model_joins_the_grids_without_an_edit(monkeypatch):
    import dataclasses

    gated = zoo.registry.get_entry("cnn_lstm_gated")
    monkeypatch.setitem(zoo.registry._REGISTRY, "cnn_lstm_newfusion", dataclasses.replace(gated, name="cnn_lstm_newfusion"))
    for name in ("default", "full"):
        models = {e.model for e in grids.grid(name) if e.config == "vqa" and e.role == "fusion"}
        assert "cnn_lstm_newfusion" in models, name


def test_full_grid_repeats_the_default_grids_rows_unchanged():
    # The two tables must compare row for row: a shared row is the same experiment.
    full = {(e.config, e.label): e for e in grids.grid("full")}
    for entry in grids.grid("default"):
        assert full[(entry.config, entry.label)] == entry


def test_default_grid_covers_each_fusion_kind_on_vqa():
    rows = [e for e in grids.grid("default") if e.config == "vqa"]
    kinds = {zoo.registry.get_entry(e.model).fusion for e in rows if e.role == "fusion"}
    assert {"concat", "weighted_sum", "gated", "film", "attention", "late"} <= kinds
    assert {e.role for e in rows} == {"image", "text", "fusion"}
    assert all(e.epochs <= 5 for e in grids.grid("default") if e.config == "digits")


def test_plan_repeats_each_row_per_seed():
    trials = grids.plan("quick", seeds=2)
    assert len(trials) == 2 * len(grids.grid("quick"))
    assert [t.seed for t in trials[:2]] == [0, 1]
    assert trials[0].run_name == "digits/cnn_seed_seed_recipe/seed0"


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope",), "Unknown grid 'nope'; expected one of \\['quick', 'default', 'full'\\]"),
        (("quick", 0), "seeds=0: expected a positive int"),
        (([],), "non-empty list of GridEntry"),
        (([make_entry("vqa", "cnn_image", "image", "zoo", 1)] * 2,), "repeated: \\[\\('vqa', 'cnn_image'\\)\\]"),
    ],
)
def test_plan_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        grids.plan(*args)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"role": "audio"}, "role='audio'"),
        ({"recipe": "fast"}, "recipe='fast'"),
        ({"epochs": 0}, "epochs=0"),
    ],
)
def test_grid_entry_validates_its_fields(kwargs, message):
    args = {"config": "vqa", "model": "cnn_image", "role": "image", "recipe": "zoo", "epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_entry(**args)


def test_unknown_override_is_named():
    entry = make_entry("vqa", "cnn_image", "image", "zoo", 1, rnn_units=(8,))
    with pytest.raises(ValueError, match="cnn_image has no hyperparameter\\(s\\) \\['rnn_units'\\]"):
        experiment.resolved_overrides(entry, VQA)


def test_multitask_labels_derive_from_the_label():
    vqa = next(e for e in grids.grid("full") if e.config == "vqa" and e.model == "cnn_lstm_multitask")
    labels = experiment._label_transform(vqa)(tf.constant([0, 1, 2, 11]))
    assert labels["answer"].numpy().tolist() == [0, 1, 2, 11]
    assert labels["yes_no_question"].numpy().tolist() == [1, 1, 0, 0]
    caption = next(e for e in grids.grid("full") if e.config == "caption" and e.model == "cnn_lstm_multitask")
    labels = experiment._label_transform(caption)(tf.constant([0, 3, 8]))
    assert labels["parity"].numpy().tolist() == [0, 1, 0]
    assert experiment.primary_output(caption) == "digit"


def test_recipes():
    seed, zoo_recipe = recipes.RECIPES["seed"], recipes.RECIPES["zoo+augment"]
    assert (seed.learning_rate, seed.lr_schedule, seed.augments) == (1e-3, "constant", False)
    assert seed.warmup_steps(430, 5) == 0
    assert not recipes.RECIPES["zoo"].augments and recipes.RECIPES["zoo"].lr_schedule == "cosine"
    assert zoo_recipe.augments and zoo_recipe.lr_schedule == "cosine"
    assert zoo_recipe.warmup_steps(430, 5) == round(zoo_recipe.warmup_epochs * 430)
    assert zoo_recipe.warmup_steps(1, 1) == 0, "warm-up stays shorter than a one-step run"


def test_history_rows_use_the_primary_head_of_a_multitask_model():
    row = {"loss": 1.0, "answer_accuracy": 0.5, "val_loss": 2.0, "val_answer_accuracy": 0.25, "learning_rate": 1e-3}
    assert experiment._history_row(row, "answer") == {
        "loss": 1.0, "accuracy": 0.5, "val_loss": 2.0, "val_accuracy": 0.25, "learning_rate": 1e-3}


@pytest.mark.slow
def test_multitask_row_trains_and_is_scored_on_its_first_head(tmp_path, demo_data_dir):
    entry = next(e for e in grids.grid("full") if e.config == "caption" and e.model == "cnn_lstm_multitask")
    entry = grids.GridEntry(entry.config, entry.model, entry.label, entry.role, entry.recipe, 1, entry.overrides)
    data = datacontext.prepare_data("caption", data_dir=demo_data_dir)
    record = experiment.train_trial(grids.Trial(entry, 0), data, tmp_path, splits=datacontext.QUICK_SPLITS)
    assert record["test"]["num_examples"] == 20
    assert len(record["test"]["confusion_matrix"]) == 10, "scored on the digit head"
    assert set(record["history"][0]) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert (tmp_path / "runs" / "caption" / "cnn_lstm_multitask" / "seed0" / "model.keras").is_file()
