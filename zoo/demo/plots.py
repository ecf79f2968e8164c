"""The demo's figures: training curves, a confusion matrix, cross-attention maps, a model diagram.

Figures are drawn on matplotlib's Agg canvas through the object-oriented API
(no pyplot), so importing this module never changes the backend of a
notebook or script. Every file is written to a temporary path beside the
target and renamed into place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence

import numpy as np

from zoo.core.atomic import atomic_path

__all__ = [
    "save_figure",
    "plot_training_curves",
    "plot_confusion_matrix",
    "plot_attention_maps",
    "attention_cell_extent",
    "plot_model_diagram",
]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png_target(path, what: str) -> str:
    target = os.path.abspath(os.fspath(path))
    if not target.endswith(".png"):
        raise ValueError(f"{what} path {os.fspath(path)!r} must end in '.png'.")
    return target


def save_figure(figure, path: str | os.PathLike) -> str:
    """Writes a matplotlib figure as PNG to `path` atomically.

    Returns:
        The absolute path written.

    Raises:
        ValueError: if `path` does not end in `.png`.
    """
    target = _png_target(path, "Figure")
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    return target


_LINE_STYLES = ("-", "--", ":", "-.")


def plot_training_curves(curves: Mapping[str, Mapping[str, Sequence[Mapping[str, float]]]], path, *, title: str):
    """Training loss and validation accuracy per epoch, one panel row per data config.

    Args:
        curves: {config: {row label: [one dict per epoch with `loss` and
            `val_accuracy`]}}.
        path: the PNG to write.
        title: the figure title.

    Returns:
        The matplotlib `Figure`.

    Raises:
        ValueError: if there is nothing to plot.
    """
    configs = [config for config, rows in curves.items() if rows]
    if not configs:
        raise ValueError("plot_training_curves got no curves to plot.")
    figure = _figure(13, 3.6 * len(configs))
    axes = figure.subplots(len(configs), 2, squeeze=False)
    for row, config in enumerate(configs):
        loss_axis, accuracy_axis = axes[row]
        longest = max(len(history) for history in curves[config].values())
        for index, (label, history) in enumerate(curves[config].items()):
            epochs = np.arange(1, len(history) + 1)
            # The full grid has 11 rows per config and tab10 has 10 colours: later rows change line style.
            style = dict(color=f"C{index % 10}", linestyle=_LINE_STYLES[index // 10 % len(_LINE_STYLES)],
                         marker="o" if len(history) < 8 else None, label=label)
            loss_axis.plot(epochs, [h.get("loss", np.nan) for h in history], **style)
            accuracy_axis.plot(epochs, [100 * h.get("val_accuracy", np.nan) for h in history], **style)
        loss_axis.set(title=f"{config}: training loss", xlabel="epoch", ylabel="cross-entropy")
        accuracy_axis.set(title=f"{config}: validation accuracy", xlabel="epoch", ylabel="accuracy (%)")
        for axis in (loss_axis, accuracy_axis):
            axis.grid(alpha=0.3)
            axis.set_xticks(range(1, longest + 1, max(1, longest // 10)))
        accuracy_axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.suptitle(title)
    save_figure(figure, path)
    return figure


def plot_confusion_matrix(matrix, class_names: Sequence[str], path, *, title: str):
    """A confusion matrix: colour = share of the true class, numbers = counts.

    Args:
        matrix: int [C, C], rows = true class, columns = predicted class.
        class_names: C names.
        path: the PNG to write.
        title: the figure title.

    Returns:
        The matplotlib `Figure`.

    Raises:
        ValueError: if the matrix is not C x C for the C names.
    """
    matrix = np.asarray(matrix)
    size = len(class_names)
    if matrix.shape != (size, size):
        raise ValueError(f"Confusion matrix of shape {matrix.shape} does not fit {size} class names.")
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, float), where=totals > 0)
    figure = _figure(1.0 + 0.62 * size, 0.6 + 0.55 * size)
    axis = figure.subplots()
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(size):
        for j in range(size):
            if matrix[i, j]:
                color = "white" if shares[i, j] > 0.5 else "black"
                axis.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8, color=color)
    axis.set_xticks(range(size), class_names, rotation=45, ha="right")
    axis.set_yticks(range(size), class_names)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    figure.colorbar(image, ax=axis, label="share of the true class", shrink=0.8)
    save_figure(figure, path)
    return figure


def attention_cell_extent(grid: int = 5, stride: int = 4, first_center: float = 4.5):
    """Where the image tower's grid cells sit on the input image, for `imshow(extent=...)`.

    Cell i of the seed CNN's 5x5 map (conv3 -> pool2 -> conv3 -> pool2) sees
    input rows and columns 4i..4i+9, centred on 4i+4.5, and neighbours are 4
    pixels apart; each cell is drawn as the 4x4 square around its centre.

    Returns:
        (left, right, bottom, top) in pixel coordinates.
    """
    low = first_center - stride / 2
    high = first_center + stride * (grid - 1) + stride / 2
    return (low, high, high, low)


def plot_attention_maps(images, questions: Sequence[str], words: Sequence[Sequence[str]], scores, path, *,
                        title: str, answers: Sequence[str] | None = None):
    """Which image regions each word of a question attends to.

    One row per example: the image with its question, then one panel per word
    with the attention weights (mean over heads) over the 5x5 grid of image
    cells, drawn over the image at the cells' receptive-field centres.

    Args:
        images: uint8 or float [N, 28, 28] or [N, 28, 28, 1].
        questions: N texts.
        words: for each example, the words (in order) whose attention to show.
        scores: [N, heads, T, 25] from `zoo.models.attention_scores`, T >= the
            number of words.
        path: the PNG to write.
        title: the figure title.
        answers: optional N strings (e.g. "true: yes, predicted: yes") under the question.

    Returns:
        The matplotlib `Figure`.

    Raises:
        ValueError: if the arguments disagree in length or the scores do not
            cover a 5x5 grid.
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    scores = np.asarray(scores)
    count = len(images)
    if not (len(questions) == len(words) == count == scores.shape[0]):
        raise ValueError(
            f"plot_attention_maps needs as many questions, word lists and score rows as images ({count}); "
            f"got {len(questions)}, {len(words)} and {scores.shape[0]}."
        )
    if scores.ndim != 4 or scores.shape[-1] != 25:
        raise ValueError(f"Expected attention scores [N, heads, T, 25]; got shape {scores.shape}.")
    columns = 1 + max(len(w) for w in words)
    if any(len(w) > scores.shape[2] for w in words):
        raise ValueError(f"More words than the {scores.shape[2]} attention steps in the scores.")
    figure = _figure(1.7 * columns, 2.0 * count + 0.5)
    axes = figure.subplots(count, columns, squeeze=False)
    extent = attention_cell_extent()
    # One colour scale for every panel, up to the largest weight shown, so
    # panels compare; a fixed 0..1 scale would wash out weights near 1/25.
    shown = [scores[row].mean(axis=0)[: len(words[row])] for row in range(count)]
    top = max(float(np.max(w)) for w in shown if w.size) if any(w.size for w in shown) else 1.0
    mapped = None
    for row in range(count):
        axis = axes[row][0]
        axis.imshow(images[row], cmap="gray_r")
        caption = questions[row] if answers is None else f"{questions[row]}\n{answers[row]}"
        axis.set_title(caption, fontsize=8, loc="left")
        weights = shown[row]  # [words, 25], mean over heads
        for column in range(1, columns):
            axis = axes[row][column]
            position = column - 1
            if position >= len(words[row]):
                axis.set_axis_off()
                continue
            axis.imshow(images[row], cmap="gray_r")
            mapped = axis.imshow(
                weights[position].reshape(5, 5), cmap="magma", alpha=0.6, vmin=0.0, vmax=top, extent=extent
            )
            axis.set_xlim(-0.5, images.shape[2] - 0.5)
            axis.set_ylim(images.shape[1] - 0.5, -0.5)
            axis.set_title(repr(words[row][position]), fontsize=9)
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
    if mapped is not None:
        figure.colorbar(mapped, ax=axes, label="attention weight (mean over heads)", shrink=0.6)
    figure.suptitle(title)
    save_figure(figure, path)
    return figure


def plot_model_diagram(model, path) -> str | None:
    """Draws a model with `keras.utils.plot_model` (shapes and layer names), atomically.

    Returns:
        None when the diagram was written, else a one-line note saying why not
        (pydot or the graphviz `dot` program missing), so a caller can report
        it and go on.

    Raises:
        ValueError: if `path` does not end in `.png`.
    """
    import keras

    target = _png_target(path, "Diagram")
    try:
        import pydot  # noqa: F401
    except ImportError:
        return "model diagram skipped: pydot is not installed (pip install 'zoo[plot]')"
    if shutil.which("dot") is None:
        return "model diagram skipped: the graphviz 'dot' program is missing (apt-get install graphviz)"
    with atomic_path(target) as tmp:
        keras.utils.plot_model(model, to_file=tmp, show_shapes=True, show_layer_names=True, dpi=72)
    return None
