"""The MNIST+text demo: what multimodal fusion buys over each single modality.

Trains the image-only and text-only baselines and the zoo's fusion models on
the `mnist_text` configs, evaluates them on the test split and writes a
results table (`results.json`, `results.md`), training curves, a confusion
matrix, a cross-attention map, a model diagram and the best model (`.keras`
and a SavedModel).

>>> from zoo.demo import run_demo
>>> results = run_demo("demo_out")              # the default grid (`make demo`)
>>> results = run_demo("demo_out", grid="quick")  # a few hundred examples, one epoch

From the shell: `zoo demo [--quick | --full] [--seeds N] [--out DIR]`.
"""

from zoo.demo import pretrain_finetune
from zoo.demo.grids import GRIDS, grid, plan
from zoo.demo.recipes import RECIPES
from zoo.demo.runner import ARTIFACTS, run_demo

__all__ = ["run_demo", "GRIDS", "RECIPES", "ARTIFACTS", "grid", "plan", "pretrain_finetune"]
