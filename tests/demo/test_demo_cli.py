"""`zoo demo --quick` end to end on the dummy MNIST files: table, files, plots, saved and exported model."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from zoo.cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_demo_writes_the_table_and_every_artifact(tmp_path, demo_data_dir, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--data-dir", demo_data_dir]) == 0
    printed = capsys.readouterr().out
    assert "| cnn_lstm_concat |" in printed and "## Targets" in printed

    results = json.loads((out / "results.json").read_text())
    assert results["grid"] == "quick" and results["seeds"] == 1
    assert results["command"] == f"zoo demo --quick --out {out} --data-dir {demo_data_dir}"
    labels = [(row["config"], row["label"]) for row in results["rows"]]
    assert labels == [("digits", "cnn_seed (seed recipe)"), ("digits", "cnn_seed (zoo+augment recipe)"),
                      ("vqa", "cnn_image"), ("vqa", "rnn_text"), ("vqa", "cnn_lstm_concat"),
                      ("vqa", "cnn_lstm_xattn")]
    for trial in results["trials"]:
        test = trial["test"]
        # The dummy test split has 20 examples; the metrics come from the predictions.
        assert test["num_examples"] == 20
        matrix = np.array(test["confusion_matrix"])
        assert matrix.sum() == 20 and np.trace(matrix) / 20 == pytest.approx(test["accuracy"])
        run_dir = out / trial["run_dir"]
        for name in ("config.json", "metrics.json", "model.keras", "demo_trial.json"):
            assert (run_dir / name).is_file(), (trial["label"], name)
        assert len(trial["history"]) == 1 and trial["parameters"] > 0
    assert [t["name"] for t in results["targets"]] == ["best_fused_vqa", "fused_margin", "digits_zoo_recipe"]

    assert results["sections"]["summary"]["contrastive"]["zero_shot_accuracy"][2] == 1
    for name in ("training_curves.png", "confusion_matrix.png", "attention_map.png", "model_diagram.png", "retrieval.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    markdown = (out / "results.md").read_text()
    assert "| cnn_lstm_xattn |" in markdown and "## Targets" in markdown
    assert not [p for p in os.listdir(out) if ".tmp" in p], "no temporary files left"

    best = results["best"]
    assert best["config"] == "vqa" and best["label"] in ("cnn_lstm_concat", "cnn_lstm_xattn")
    assert best["export_check"]["same_predictions"] == best["export_check"]["examples"] == 20
    served = tf.saved_model.load(str(out / "best_model_savedmodel")).signatures["serving_default"]
    answer = served(image=tf.zeros([1, 28, 28, 1], tf.uint8), text=tf.constant(["is it even?"]))
    assert answer["class_name"].numpy()[0].decode() in ["no", "yes", "zero", "one", "two", "three", "four",
                                                          "five", "six", "seven", "eight", "nine"]
    assert (out / "best_model.keras").stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--quick", "--full"], None),
        (["demo", "--seeds", "0"], "--seeds 0: expected a positive number of seeds"),
        (["demo", "--batch-size", "0"], "--batch-size 0: expected a positive number"),
    ],
)
def test_bad_arguments_exit_with_code_2(argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert (message or "not allowed with argument") in error
    assert len(error.strip().splitlines()) == 1


def test_missing_mnist_dir_is_refused_even_with_prepared_data(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--mnist-dir", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert "--mnist-dir" in error and "does not exist" in error
    assert not (tmp_path / "demo").exists()


def test_out_must_be_a_directory(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["demo", "--quick", "--out", str(path)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
