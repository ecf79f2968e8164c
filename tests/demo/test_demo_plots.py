"""The demo's figures are written as PNGs, atomically, and bad input is named."""

import os
import shutil

import numpy as np
import pytest

from zoo.demo import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _only_png(directory, name):
    assert sorted(os.listdir(directory)) == [name], "no temporary file is left behind"
    with open(os.path.join(directory, name), "rb") as handle:
        assert handle.read(8) == PNG


def test_training_curves(tmp_path):
    history = [{"loss": 1.0, "val_accuracy": 0.5}, {"loss": 0.5, "val_accuracy": 0.8}]
    figure = plots.plot_training_curves({"vqa": {"a": history, "b": history[:1]}, "digits": {"c": history}},
                                        tmp_path / "curves.png", title="curves")
    _only_png(tmp_path, "curves.png")
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["vqa: training loss", "vqa: validation accuracy",
                      "digits: training loss", "digits: validation accuracy"]
    assert [line.get_label() for line in figure.axes[1].get_lines()] == ["a", "b"]
    assert list(figure.axes[1].get_lines()[0].get_ydata()) == [50.0, 80.0], "accuracy in percent"
    with pytest.raises(ValueError, match="no curves"):
        plots.plot_training_curves({"vqa": {}}, tmp_path / "x.png", title="t")


def test_training_curves_of_a_full_grid_config_are_told_apart(tmp_path):
    history = [{"loss": 1.0, "val_accuracy": 0.5}]
    rows = {f"model_{i}": history for i in range(11)}  # the full grid: 2 baselines + 9 fused rows
    figure = plots.plot_training_curves({"vqa": rows}, tmp_path / "curves.png", title="curves")
    styles = [(line.get_color(), line.get_linestyle()) for line in figure.axes[1].get_lines()]
    assert len(set(styles)) == 11


def test_confusion_matrix(tmp_path):
    figure = plots.plot_confusion_matrix([[5, 1], [0, 4]], ["no", "yes"], tmp_path / "cm.png", title="cm")
    _only_png(tmp_path, "cm.png")
    texts = sorted(t.get_text() for t in figure.axes[0].texts)
    assert texts == ["1", "4", "5"], "counts drawn, zero cells left blank"
    with pytest.raises(ValueError, match="shape \\(2, 2\\) does not fit 3 class names"):
        plots.plot_confusion_matrix([[5, 1], [0, 4]], ["a", "b", "c"], tmp_path / "bad.png", title="x")


def test_attention_cells_sit_on_their_receptive_fields():
    left, right, bottom, top = plots.attention_cell_extent()
    # Five cells 4 px apart centred on 4.5, 8.5, ..., 20.5.
    assert (left, right) == (2.5, 22.5) and (top, bottom) == (2.5, 22.5)


def test_attention_maps(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.random((2, 8, 7, 25))
    scores /= scores.sum(-1, keepdims=True)
    images = rng.integers(0, 255, (2, 28, 28, 1), dtype=np.uint8)
    figure = plots.plot_attention_maps(images, ["is it even?", "what digit is this?"],
                                       [["is", "it", "even"], ["what", "digit", "is", "this"]], scores,
                                       tmp_path / "att.png", title="att", answers=["true: yes", "true: two"])
    _only_png(tmp_path, "att.png")
    titles = [axis.get_title() for axis in figure.axes[:5]]
    assert titles == ["", "'is'", "'it'", "'even'", ""]
    assert figure.axes[0].get_title(loc="left") == "is it even?\ntrue: yes"
    with pytest.raises(ValueError, match="as many questions, word lists and score rows as images \\(2\\)"):
        plots.plot_attention_maps(images, ["q"], [["q"]], scores, tmp_path / "x.png", title="x")
    with pytest.raises(ValueError, match="\\[N, heads, T, 25\\]"):
        plots.plot_attention_maps(images, ["a", "b"], [["a"], ["b"]], scores[..., :24], tmp_path / "x.png", title="x")


def test_figure_paths_must_be_png(tmp_path):
    with pytest.raises(ValueError, match="must end in '.png'"):
        plots.plot_confusion_matrix([[1]], ["a"], tmp_path / "cm.jpg", title="x")


def _tiny_model():
    import keras

    inputs = keras.Input((4,), name="image")
    return keras.Model(inputs, keras.layers.Dense(2, name="head_logits")(inputs))


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")
def test_model_diagram(tmp_path):
    assert plots.plot_model_diagram(_tiny_model(), tmp_path / "model.png") is None
    _only_png(tmp_path, "model.png")


def test_model_diagram_without_graphviz_returns_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    note = plots.plot_model_diagram(_tiny_model(), tmp_path / "model.png")
    assert "graphviz 'dot' program is missing" in note
    assert os.listdir(tmp_path) == []
