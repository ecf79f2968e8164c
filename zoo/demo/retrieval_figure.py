"""The demo's retrieval picture: for a few text queries, the test images a dual encoder ranks first."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from zoo.data import Tokenizer, load_vocabulary
from zoo.demo import plots
from zoo.demo.contrastive import load_eval_data

__all__ = ["QUERIES", "plot_retrieval", "retrieval_figure"]

# Texts in the describe config's words: the digit and both attributes vary.
QUERIES = (
    "a thick 7 leaning right",
    "a thin one standing upright",
    "the digit four, bold and tilted left",
    "2 in light strokes, slanted to the left",
    "someone wrote a heavy eight written upright",
)


def plot_retrieval(queries: Sequence[str], images: np.ndarray, path, *, title: str) -> str:
    """One row per query: the query text, then its retrieved images best first.

    Args:
        queries: the query texts.
        images: uint8 or float [len(queries), K, H, W, 1].
        path: the .png to write (atomically).

    Returns:
        The written path.
    """
    rows, count = images.shape[:2]
    figure = plots._figure(1.2 * count + 3.0, 1.25 * rows + 0.5)
    grid = figure.add_gridspec(rows, count + 1, width_ratios=[3.0] + [1.0] * count)
    for row, query in enumerate(queries):
        label = figure.add_subplot(grid[row, 0])
        label.axis("off")
        label.text(0.0, 0.5, f"“{query}”", va="center", ha="left", fontsize=9, wrap=True)
        for column in range(count):
            axis = figure.add_subplot(grid[row, column + 1])
            axis.imshow(images[row, column, ..., 0], cmap="gray_r")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(f"#{column + 1}", fontsize=8)
    figure.suptitle(title, fontsize=10)
    return plots.save_figure(figure, path)


def retrieval_figure(run_dir: str, path, *, queries: Sequence[str] = QUERIES, count: int = 6, max_length: int = 16,
                     data_dir=None, source_dir=None) -> str:
    """Draws `plot_retrieval` for a trained dual encoder's run folder over the describe test split."""
    import zoo.models
    from zoo.export import load_model

    model = load_model(os.path.join(run_dir, "model.keras"))
    tokenizer = Tokenizer(load_vocabulary(os.path.join(run_dir, "vocabulary.txt")), max_length)
    test = load_eval_data("test", tokenizer, data_dir=data_dir, source_dir=source_dir)
    query_emb = zoo.models.embed_texts(model, tokenizer(tf.constant(list(queries))).numpy())
    ranked = zoo.models.retrieval.top_k(query_emb, zoo.models.embed_images(model, test.images), count)
    return plot_retrieval(queries, test.images[ranked], path,
                          title=f"Text → image retrieval over the describe test split ({model.name})")
