"""The grids of the MNIST+text demo: which model is trained on which config, how.

Each grid is a declarative list of rows (`GridEntry`); its builder's docstring
gives the command, the measured time and the measured accuracy. The fused
models come from the registry: every registered image + text classifier
(`fused_classifiers`) is a row of the full grid, so a new fusion model joins
the demo without an edit here.

* `vqa`: a question about the digit, the answer as the label (12 classes).
  Neither modality alone can answer: the image-only model cannot see the
  question and the text-only model cannot see the digit.
* `caption`: a text that names, hints at or says nothing about the digit; half
  of the images occluded or noisy; label = digit. Each modality alone gets
  part of the way.
* `digits`: plain MNIST, for the seed CNN under two training recipes.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from zoo.demo.recipes import DIGITS_RECIPE, RECIPES, TEXT_TOWER
from zoo.registry import get_entry, list_models

__all__ = [
    "GridEntry",
    "Trial",
    "make_entry",
    "fused_classifiers",
    "MULTITASK_TASKS",
    "GRIDS",
    "grid",
    "plan",
]

ROLES = ("image", "text", "fusion", "digits")


@dataclasses.dataclass(frozen=True)
class GridEntry:
    """One row of the results table before seeds are attached.

    Attributes:
        config: the `mnist_text` config ("vqa", "caption", "digits").
        model: the registered model name.
        label: the row's name in the table (unique within a config).
        role: "image", "text" (unimodal baselines), "fusion", or "digits".
        recipe: key in `RECIPES`.
        epochs: training epochs.
        overrides: hyperparameter overrides besides vocabulary size, text
            length and class count (which come from the data), as sorted pairs.
    """

    config: str
    model: str
    label: str
    role: str
    recipe: str
    epochs: int
    overrides: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role={self.role!r}: expected one of {ROLES}.")
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe={self.recipe!r}: expected one of {sorted(RECIPES)}.")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs={self.epochs!r}: expected a positive int.")


@dataclasses.dataclass(frozen=True)
class Trial:
    """A grid entry with a seed: one training run."""

    entry: GridEntry
    seed: int

    @property
    def run_name(self) -> str:
        """`<config>/<label as a file name>/seed<k>`, the run directory under `runs/`."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.entry.label).strip("_")
        return os.path.join(self.entry.config, slug, f"seed{self.seed}")


def make_entry(config: str, model: str, role: str, recipe: str, epochs: int, label: str | None = None,
               **overrides) -> GridEntry:
    """A `GridEntry` with overrides given as keywords (label = model name unless given)."""
    return GridEntry(config, model, label or model, role, recipe, epochs, tuple(sorted(overrides.items())))


def _text_configs(configs, image_epochs, text_epochs, fusion_models, fusion_epochs, recipe="zoo"):
    entries = []
    for config in configs:
        entries.append(make_entry(config, "cnn_image", "image", recipe, image_epochs))
        entries.append(make_entry(config, "rnn_text", "text", recipe, text_epochs, **TEXT_TOWER))
        for model in fusion_models:
            overrides = {} if model.endswith("_seed") else dict(TEXT_TOWER)
            if model == "cnn_lstm_multitask":
                overrides["tasks"] = MULTITASK_TASKS[config]
            entries.append(make_entry(config, model, "fusion", recipe, fusion_epochs, **overrides))
    return entries


# The multitask model's extra heads; both derive from the label, so no other
# data is needed: whether the answer is yes/no (vqa), the digit's parity (caption).
MULTITASK_TASKS = {
    "vqa": (("answer", 12), ("yes_no_question", 2)),
    "caption": (("digit", 10), ("parity", 2)),
}

def fused_classifiers(*, include_seed: bool = True, include_multitask: bool = True) -> tuple[str, ...]:
    """Every registered image + text classifier, in registry order.

    A classifier has a `num_classes` (one head) or `tasks` (several heads)
    hyperparameter; `cnn_lstm_captioner` generates text and has neither.
    Models with pretrained towers (a `weights` card) are left out: they read
    text through their backbone's tokenizer, not the demo's vocabulary.

    Args:
        include_seed: keep the seed systems (names ending in `_seed`).
        include_multitask: keep models with several heads (`tasks`), which
            need per-config tasks (`MULTITASK_TASKS`).
    """
    names = []
    for name in list_models():
        entry = get_entry(name)
        if set(entry.modalities) != {"image", "text"} or entry.fusion is None:
            continue
        multitask = "tasks" in entry.defaults
        if not (multitask or "num_classes" in entry.defaults):
            continue
        if entry.weights is not None:
            # Pretrained towers read text through their own tokenizer, not the
            # demo's vocabulary; the pretrain -> fine-tune table covers them.
            continue
        if (name.endswith("_seed") and not include_seed) or (multitask and not include_multitask):
            continue
        names.append(name)
    return tuple(names)


def _digits_rows(epochs: int) -> list[GridEntry]:
    return [
        make_entry("digits", "cnn_seed", "digits", "seed", epochs, label="cnn_seed (seed recipe)"),
        make_entry("digits", "cnn_seed", "digits", DIGITS_RECIPE, epochs, label=f"cnn_seed ({DIGITS_RECIPE} recipe)"),
    ]


def _quick_grid() -> list[GridEntry]:
    """`zoo demo --quick`: a few hundred examples, one epoch per row; a smoke test, not a result."""
    return [
        *_digits_rows(1),
        *_text_configs(("vqa",), 1, 1, ("cnn_lstm_concat", "cnn_lstm_xattn"), 1),
    ]


# Fusion rows train 4 epochs on vqa, 3 on caption. After 3 epochs vqa is still
# converging (validation accuracy 97.8-98.3%, up 0.4-2.3 points from epoch 2),
# so the best fused row's test accuracy moved by up to 2 points with nothing
# but float rounding changed: cnn_lstm_gated, seeds 0-3, 3 epochs, 97.03-99.25%
# across two LSTM kernels and a 1e-6 input perturbation; 4 epochs gave
# 98.81-99.33%, for 9-12 s more per row (single-seed demos on 2 idle cores).
VQA_FUSION_EPOCHS = 4
CAPTION_FUSION_EPOCHS = 3


def _default_grid() -> list[GridEntry]:
    """`make demo` (= `zoo demo --out demo_out`): 8 min 11 s on 2 idle CPU cores, one seed, sections included.

    Every single-head fusion model on vqa, the zoo's concatenation on caption,
    the unimodal baselines, and the seed CNN on digits under two recipes.
    Measured (3 seeds, `zoo demo --seeds 3`, 23 min 30 s): best fused vqa
    99.24 ± 0.12% (`cnn_lstm_gated`), seed CNN on digits 99.47 ± 0.05% with
    `zoo+augment` (README, "The MNIST+text demo").
    """
    return [
        *_digits_rows(5),
        *_text_configs(("vqa",), 1, 2, fused_classifiers(include_seed=False, include_multitask=False),
                       VQA_FUSION_EPOCHS),
        *_text_configs(("caption",), 1, 2, ("cnn_lstm_concat",), CAPTION_FUSION_EPOCHS),
    ]


def _full_grid() -> list[GridEntry]:
    """`make demo-full` (= `zoo demo --full --seeds 3`): 1 h 59 min on 2 shared CPU cores (2026-11-23).

    Every fused classifier of the registry on vqa and caption, with the
    default grid's recipes and epochs, so every row it shares with the default
    grid is the same experiment and the two tables compare. Measured (3 seeds,
    2026-11-23, with 3 epochs on vqa): vqa 62.5% (seed's linear concat, late
    fusion) to 99.0% (gated); caption 89.2% (cross-attention) to 95.5%
    (README, "The MNIST+text demo").
    """
    return [
        *_digits_rows(5),
        *_text_configs(("vqa",), 1, 2, fused_classifiers(), VQA_FUSION_EPOCHS),
        *_text_configs(("caption",), 1, 2, fused_classifiers(), CAPTION_FUSION_EPOCHS),
    ]


GRIDS: dict[str, Callable[[], list[GridEntry]]] = {
    "quick": _quick_grid,
    "default": _default_grid,
    "full": _full_grid,
}


def grid(name: str) -> list[GridEntry]:
    """The grid entries (table rows) of a named grid.

    Raises:
        ValueError: for an unknown grid name.
    """
    if name not in GRIDS:
        raise ValueError(f"Unknown grid {name!r}; expected one of {list(GRIDS)}.")
    return GRIDS[name]()


def plan(name: str | Sequence[GridEntry], seeds: int = 1) -> list[Trial]:
    """All training runs of a grid: each entry once per seed 0..seeds-1.

    Args:
        name: a grid name (see `GRIDS`) or a list of `GridEntry`.
        seeds: seeds per entry.

    Raises:
        ValueError: for an unknown grid, an empty or duplicated entry list, or
            a seed count below 1.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}: expected a positive int.")
    entries = grid(name) if isinstance(name, str) else list(name)
    if not entries or not all(isinstance(e, GridEntry) for e in entries):
        raise ValueError(f"Expected a grid name or a non-empty list of GridEntry; got {name!r}.")
    rows = [(e.config, e.label) for e in entries]
    duplicates = sorted({row for row in rows if rows.count(row) > 1})
    if duplicates:
        raise ValueError(f"Grid rows must have distinct (config, label); repeated: {duplicates}.")
    return [Trial(entry, seed) for entry in entries for seed in range(seeds)]
