"""`zoo train`: bad input exits 2 with one line; end to end on a small real split."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.training import synthetic
from zoo.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_SET = [
    "--set", "conv_filters=(4, 8)", "--set", "image_units=16", "--set", "embed_dim=8",
    "--set", "rnn_units=(8, 8)", "--set", "head_units=16",
]


def _mnist_dir():
    directory = os.environ.get("ZOO_DATA_DIR")
    if directory and os.path.exists(os.path.join(directory, "mnist", "train-images-idx3-ubyte.gz")):
        return directory
    return None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "nope"], "--data 'nope': unknown data config"),
        (["--data", "vqa", "--epochs", "0"], "--epochs=0: expected an integer >= 1"),
        (["--data", "vqa", "--set", "vocab_size"], "--set 'vocab_size': expected KEY=VALUE"),
        (["--data", "vqa", "--warmup-steps", "5"], "--warmup-steps=5 needs --lr-schedule='cosine'"),
        (["--data", "vqa", "--profile", "3:1"], "--profile=(3, 1): stop 1 must be greater than start 3"),
        (["--data", "vqa", "--profile=-2:1"], "--profile=(-2, 1): start -2 is negative"),
        (["--data", "vqa", "--profile", "3"], "argument --profile: '3': expected START:STOP"),
        (["--data", "vqa", "--epochs", "2", "--steps-per-epoch", "5", "--profile", "4:11"],
         "--profile=(4, 11): stop 11 is beyond the run's 10 steps"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, message):
    code = main(["train", "cnn_lstm_concat", "--out", str(tmp_path / "run"), "--quiet", *extra])
    error = capsys.readouterr().err
    assert code == 2
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("profile_dir", "step", "resumed", "said"),
    [
        ("RUN/logs/train/plugins/profile/2026_01_02_03_04_05", 8, None,
         "Wrote a profile of steps 2 to 4 in RUN/logs/train/plugins/profile/2026_01_02_03_04_05"),
        (None, 8, 6, "No profile written: the run had passed step 4 before this call."),
        (None, 2, None, "No profile written: the run ended at step 2, before step 2."),
    ],
)
def test_train_says_where_the_profile_went_and_how_to_view_it(profile_dir, step, resumed, said, tmp_path,
                                                              monkeypatch, capsys):
    import zoo
    from zoo.training.run import TrainResult

    seen = {}
    out = str(tmp_path / "run")

    def fake_train(name, **kwargs):
        seen.update(kwargs)
        where = profile_dir and profile_dir.replace("RUN", out)
        return TrainResult(model=None, metrics={}, history=[], step=step, epoch=1, stopped_early=False, out=out,
                           resumed_from_step=resumed, profile_dir=where)

    monkeypatch.setattr(zoo, "train", fake_train)
    assert main(["train", "cnn_lstm_concat", "--data", "vqa", "--out", out, "--profile", "2:4"]) == 0
    printed = capsys.readouterr().out
    assert seen["profile"] == (2, 4)
    assert said.replace("RUN", out) in printed
    if profile_dir:
        assert f"tensorboard --logdir {os.path.join(out, 'logs')}" in printed and "Profile tab" in printed


def test_missing_required_options_are_usage_errors(capsys):
    assert main(["train", "cnn_lstm_concat", "--out", "x"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("zoo train: error: the following arguments are required: --data")
    assert len(error.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("zoo.data.pipeline") is None or _mnist_dir() is None,
    reason="needs zoo.data.pipeline and the MNIST files in ZOO_DATA_DIR",
)
def test_cli_trains_and_resumes_on_a_real_split(tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "zoo.cli.main", "train", "cnn_lstm_concat", "--data", "vqa",
        "--data-dir", str(tmp_path / "tfds"), "--train-split", "train[:192]", "--validation-split", "validation[:64]",
        "--batch-size", "32", "--max-length", "16", "--seed", "4", "--out", str(out), *TINY_SET,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    first = subprocess.run([*command, "--epochs", "1"], env=env, capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Epoch 1/1" in first.stdout and "val_accuracy" in first.stdout
    second = subprocess.run([*command, "--epochs", "2"], env=env, capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Epoch 1/2" not in second.stdout and "Epoch 2/2" in second.stdout

    config = json.loads((out / "config.json").read_text())
    assert (config["data"], config["model"], config["epochs"], config["steps_per_epoch"]) == ("vqa", "cnn_lstm_concat", 2, 6)
    assert config["hyperparameters"]["max_length"] == 16
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["step"], metrics["epoch"]) == (12, 2)
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    vocabulary = (out / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    assert vocabulary[:2] == ["", "[UNK]"]
    assert config["hyperparameters"]["vocab_size"] == config["vocabulary_size"]

    model = keras.saving.load_model(out / "model.keras")
    features, _ = next(iter(synthetic.examples(2, max_length=16, vocab_size=config["vocabulary_size"]).batch(2)))
    probabilities = model.predict({"image": features["image"], "token_ids": features["token_ids"]}, verbose=0)
    assert probabilities.shape == (2, config["hyperparameters"]["num_classes"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
