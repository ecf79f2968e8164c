"""`zoo list`, `zoo describe`, `zoo build`: output and exit codes."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from zoo.cli.main import main


def test_list_all_and_pattern(capsys):
    assert main(["list"]) == 0
    assert "cnn_lstm_xattn" in capsys.readouterr().out.split()
    assert main(["list", "cnn_lstm_wsum_*"]) == 0
    assert capsys.readouterr().out.split() == ["cnn_lstm_wsum_fixed", "cnn_lstm_wsum_learned"]


def test_list_pattern_without_match_is_an_error(capsys):
    assert main(["list", "nope*"]) == 2
    assert "no model matches 'nope*'" in capsys.readouterr().err


def test_describe_prints_the_card(capsys):
    assert main(["describe", "cnn_lstm_gated", "--set", "gate_units=64"]) == 0
    out = capsys.readouterr().out
    for text in ["cnn_lstm_gated", "Arevalo", "fusion", "gated", "parameters", "multiply-adds", "gate_units", "64",
                 "token_ids: int32 [batch, 32]"]:
        assert text in out


def test_describe_json(capsys):
    assert main(["describe", "cnn_seed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == 225_034


def test_build_summary(capsys):
    assert main(["build", "cnn_lstm_concat", "--set", "vocab_size=50", "--summary"]) == 0
    assert "text_embedding" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")
def test_build_plot_writes_a_png(tmp_path, capsys):
    path = tmp_path / "model.png"
    assert main(["build", "cnn_lstm_film", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.png"]


def test_plot_without_graphviz_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["build", "cnn_seed", "--plot", str(tmp_path / "m.png")]) == 2
    assert "apt-get install graphviz" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["describe", "cnn_lstm_concatt"], "Did you mean 'cnn_lstm_concat'"),
        (["build", "cnn_seed", "--set", "foo=1"], "Unknown hyperparameter 'foo'"),
        (["build", "cnn_seed", "--set", "num_classes"], "expected KEY=VALUE"),
        (["build", "cnn_lstm_xattn", "--set", "num_heads=3"], "multiple of num_heads=3"),
        (["build", "cnn_seed", "--plot", "diagram.txt"], "ending in .png"),
        (["build"], "the following arguments are required: name"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors exit from inside parse_args
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_console_script_has_no_traceback_on_bad_input():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli.main", "describe", "no_such_model"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "Unknown model 'no_such_model'" in result.stderr
    assert "Traceback" not in result.stderr
