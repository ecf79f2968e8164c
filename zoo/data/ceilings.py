"""Unimodal ceilings of mnist_text: how far text alone or the image alone can go.

A model that sees only one modality can at best predict, for each input it
sees, the label most often paired with that input. This module measures that:

- text-only: the best answer per exact text, fitted on one split and scored
  on another (for texts not seen in fitting: the overall most frequent label);
- image-only oracle (vqa): the best answer per true digit, i.e. an image-only
  model that recognises every digit perfectly; real models sit below it;
- majority: one constant answer for everything.

For the caption config the image-only ceiling is not analytic (degraded images
are partly readable), so `python -m zoo.demo.ceilings --train cnn_seed`
measures it by training the seed image model on images alone.
The dataset card quotes this module's output.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Hashable, Sequence

import numpy as np
import tensorflow_datasets as tfds

from zoo.data import pipeline
from zoo.datasets.mnist_text import generation


def best_constant_accuracy(
    fit_keys: Sequence[Hashable],
    fit_labels: Sequence[int],
    eval_keys: Sequence[Hashable],
    eval_labels: Sequence[int],
) -> float:
    """Accuracy of answering each key with the label most often seen with it.

    Ties go to the smallest label id; keys absent from the fitting data get the
    overall most frequent label.

    Raises:
        ValueError: if lengths differ or a set is empty.
    """
    if len(fit_keys) != len(fit_labels) or len(eval_keys) != len(eval_labels):
        raise ValueError(
            f"keys and labels differ in length: fit {len(fit_keys)} vs {len(fit_labels)}, "
            f"eval {len(eval_keys)} vs {len(eval_labels)}."
        )
    if not len(fit_keys) or not len(eval_keys):
        raise ValueError("best_constant_accuracy needs non-empty fitting and evaluation sets.")
    counts: dict[Hashable, collections.Counter] = collections.defaultdict(collections.Counter)
    for key, label in zip(fit_keys, fit_labels, strict=True):
        counts[key][int(label)] += 1
    overall = collections.Counter(int(label) for label in fit_labels)
    fallback = _most_common(overall)
    best = {key: _most_common(c) for key, c in counts.items()}
    hits = sum(best.get(key, fallback) == int(label) for key, label in zip(eval_keys, eval_labels, strict=True))
    return hits / len(eval_keys)


def _most_common(counter: collections.Counter) -> int:
    return min(counter, key=lambda label: (-counter[label], label))


def read_columns(config: str, split: str, data_dir=None) -> dict[str, np.ndarray]:
    """Every non-image feature of a split as NumPy columns, in file order."""
    builder = pipeline.load_builder(config, data_dir=data_dir)
    names = [n for n in ("text", "label", "digit", "kind", "degradation", "example_id") if n in builder.info.features]
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    batches = list(ds.map(lambda example: {n: example[n] for n in names}).batch(8192).as_numpy_iterator())
    return {n: np.concatenate([batch[n] for batch in batches]) for n in names}


def unimodal_ceilings(config: str, *, data_dir=None, fit_split: str = "train", eval_split: str = "test") -> dict:
    """Majority, text-only and (vqa) image-only-oracle accuracies of a text config.

    Args:
        config: "vqa" or "caption".
        data_dir: TFDS data directory (see `zoo.data.pipeline.load_builder`).
        fit_split: where the best answers are counted.
        eval_split: where they are scored.

    Returns:
        {"majority": float, "text_only": float, "per_kind_text_only": {kind: float},
         "image_only_oracle": float (vqa only)}.

    Raises:
        ValueError: for a config without text.
    """
    if config not in pipeline.TEXT_CONFIGS:
        raise ValueError(f"config {config!r} has no text; expected one of {list(pipeline.TEXT_CONFIGS)}.")
    fit = read_columns(config, fit_split, data_dir)
    ev = read_columns(config, eval_split, data_dir)
    constant = [0] * len(fit["label"])
    result = {
        "majority": best_constant_accuracy(constant, fit["label"], [0] * len(ev["label"]), ev["label"]),
        "text_only": best_constant_accuracy(fit["text"], fit["label"], ev["text"], ev["label"]),
    }
    kind_names = generation.KIND_NAMES[config]
    result["per_kind_text_only"] = {}
    for kind, name in enumerate(kind_names):
        mask = ev["kind"] == kind
        if mask.any():
            result["per_kind_text_only"][name] = best_constant_accuracy(
                fit["text"], fit["label"], ev["text"][mask], ev["label"][mask]
            )
    if config == "vqa":
        result["image_only_oracle"] = best_constant_accuracy(fit["digit"], fit["label"], ev["digit"], ev["label"])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the unimodal ceilings quoted in the mnist_text dataset card."""
    parser = argparse.ArgumentParser(prog="python -m zoo.data.ceilings", description=main.__doc__)
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS's)")
    parser.add_argument(
        "--configs", nargs="+", default=list(pipeline.TEXT_CONFIGS), choices=pipeline.TEXT_CONFIGS,
        help="configs to report on",
    )
    args = parser.parse_args(argv)
    for config in args.configs:
        for split in ("validation", "test"):
            result = unimodal_ceilings(config, data_dir=args.data_dir, eval_split=split)
            print(f"{config} {split}: " + ", ".join(f"{k}={format_result(v)}" for k, v in result.items()), flush=True)
    return 0


def format_result(value) -> str:
    """Formats a ceiling (a float or a dict of floats) to four decimals."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v:.4f}" for k, v in value.items()) + "}"
    return f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
