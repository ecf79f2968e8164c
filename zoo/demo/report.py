"""The results table: per-row summaries over seeds, target checks, `results.json` and `results.md`.

Both files are written atomically (temporary file beside the target, then
`os.replace`), so a reader never sees half a report.
"""

from __future__ import annotations

import datetime
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "TARGETS",
    "summarize",
    "check_targets",
    "format_table",
    "render_markdown",
    "machine_description",
    "now",
]

# Table columns taken from each trial's test metrics, in display order.
METRICS = (
    ("accuracy", "test accuracy (%)"),
    ("macro_precision", "macro precision (%)"),
    ("macro_recall", "macro recall (%)"),
    ("macro_f1", "macro F1 (%)"),
)

# The outcomes the demo must show (see the README's demo section).
TARGETS = {
    "best_fused_vqa": 0.990,  # best fused model's test accuracy on vqa
    "fused_margin": 0.20,  # every fused vqa row at least this far above the best unimodal vqa row
    "digits_zoo_recipe": 0.993,  # seed CNN on plain digits, a zoo recipe, within 5 epochs
    "digits_max_epochs": 5,
}


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    array = np.asarray(values, dtype=np.float64)
    # Sample standard deviation across seeds; undefined for a single seed.
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return {"mean": float(array.mean()), "std": std}


def summarize(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Groups trial records into table rows: one per (config, label), metrics over seeds.

    Args:
        records: the trial records of `zoo.demo.experiment.train_trial`.

    Returns:
        Rows in first-seen order, each with `config`, `label`, `model`, `role`,
        `recipe`, `epochs`, `parameters`, `seeds`, and `{"mean", "std"}` for
        every metric in `METRICS` and for `train_seconds`.

    Raises:
        ValueError: if two records of one row disagree on model, recipe or epochs.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["config"], record["label"]), []).append(record)
    rows = []
    for (config, label), group in groups.items():
        first = group[0]
        for key in ("model", "recipe", "epochs", "role", "parameters"):
            values = {json.dumps(r[key]) for r in group}
            if len(values) > 1:
                raise ValueError(f"Row {config}/{label}: trials disagree on {key}: {sorted(values)}.")
        row = {key: first[key] for key in ("config", "label", "model", "role", "recipe", "epochs", "parameters")}
        row["seeds"] = [r["seed"] for r in group]
        row["num_test_examples"] = first["test"]["num_examples"]
        for key, _ in METRICS:
            row[key] = _stats([r["test"][key] for r in group])
        row["train_seconds"] = _stats([r["train_seconds"] for r in group])
        rows.append(row)
    return rows


def _best(rows, config, role):
    candidates = [r for r in rows if r["config"] == config and r["role"] == role]
    return max(candidates, key=lambda r: r["accuracy"]["mean"]) if candidates else None


def check_targets(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Checks the demo's targets (`TARGETS`) against measured rows.

    A target whose rows are not in the grid (e.g. no `digits` rows) is
    reported with `met` None.

    Returns:
        One dict per target: `name`, `description`, `met` (True, False or
        None), `value` (the measured figure) and `detail`.
    """
    results = []
    best = _best(rows, "vqa", "fusion")
    results.append({
        "name": "best_fused_vqa",
        "description": f"best fused model >= {TARGETS['best_fused_vqa']:.1%} test accuracy on vqa",
        "met": None if best is None else best["accuracy"]["mean"] >= TARGETS["best_fused_vqa"],
        "value": None if best is None else best["accuracy"]["mean"],
        "detail": "no fused vqa row" if best is None else f"{best['label']}: {best['accuracy']['mean']:.2%}",
    })
    # On vqa neither modality can answer alone, so fusion must win by far. On
    # caption the image alone is strong; its fusion gain is reported, not judged.
    unimodal = [r for r in rows if r["config"] == "vqa" and r["role"] in ("image", "text")]
    fused = [r for r in rows if r["config"] == "vqa" and r["role"] == "fusion"]
    margin = None
    if unimodal and fused:
        top = max(unimodal, key=lambda r: r["accuracy"]["mean"])
        low = min(fused, key=lambda r: r["accuracy"]["mean"])
        margin = low["accuracy"]["mean"] - top["accuracy"]["mean"]
        detail = (f"weakest fused row {low['label']} {low['accuracy']['mean']:.2%} vs best unimodal row "
                  f"{top['label']} {top['accuracy']['mean']:.2%} ({100 * margin:+.1f} points)")
    else:
        detail = "no vqa config with both fused and unimodal rows"
    results.append({
        "name": "fused_margin",
        "description": (f"every fused row on vqa at least {100 * TARGETS['fused_margin']:.0f} points above the "
                        "best unimodal row"),
        "met": None if margin is None else margin >= TARGETS["fused_margin"],
        "value": margin,
        "detail": detail,
    })
    digits = [r for r in rows if r["config"] == "digits" and r["model"] == "cnn_seed" and r["recipe"] != "seed"
              and r["epochs"] <= TARGETS["digits_max_epochs"]]
    top = max(digits, key=lambda r: r["accuracy"]["mean"]) if digits else None
    seed_rows = [r for r in rows if r["config"] == "digits" and r["model"] == "cnn_seed" and r["recipe"] == "seed"]
    detail = "no digits row with a zoo recipe" if top is None else (
        f"{top['label']}, {_epochs(top['epochs'])}: {top['accuracy']['mean']:.2%}")
    if seed_rows:
        detail += f"; as in the seed ({_epochs(seed_rows[0]['epochs'])}): {seed_rows[0]['accuracy']['mean']:.2%}"
    results.append({
        "name": "digits_zoo_recipe",
        "description": (f"seed CNN >= {TARGETS['digits_zoo_recipe']:.1%} on plain digits within "
                        f"{TARGETS['digits_max_epochs']} epochs (a zoo recipe)"),
        "met": None if top is None else top["accuracy"]["mean"] >= TARGETS["digits_zoo_recipe"],
        "value": None if top is None else top["accuracy"]["mean"],
        "detail": detail,
    })
    return results


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("s" if count != 1 else "")


def describe_text_tower(tower: Mapping[str, Any]) -> str:
    """E.g. "embedding 32, LSTM 64" for {"embed_dim": 32, "rnn_units": (64,)}."""
    parts = [f"embedding {tower['embed_dim']}"] if "embed_dim" in tower else []
    if "rnn_units" in tower:
        parts.append(" + ".join(f"LSTM {units}" for units in tower["rnn_units"]))
    return ", ".join(parts) or "model defaults"


def _cell(stat: Mapping[str, float | None], scale: float = 100.0, digits: int = 2) -> str:
    if stat["std"] is None:
        return f"{scale * stat['mean']:.{digits}f}"
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of rows (one config): model, parameters, epochs, metrics, training time.

    Returns:
        The table text, without a trailing newline.
    """
    header = ["model", "parameters", "epochs", *(title for _, title in METRICS), "training time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in rows:
        cells = [row["label"], f"{row['parameters']:,}", str(row["epochs"])]
        cells += [_cell(row[key]) for key, _ in METRICS]
        cells.append(_cell(row["train_seconds"], scale=1.0, digits=0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CONFIG_TITLES = {
    "vqa": "vqa: answer a question about the digit (12 answers; neither modality suffices alone)",
    "caption": "caption: the digit, from a possibly degraded image and a text that may name or hint at it",
    "digits": "digits: plain MNIST, the seed CNN under two training recipes",
}


def machine_description() -> dict[str, Any]:
    """The machine and library versions, for the report header."""
    import keras
    import tensorflow as tf

    from zoo.training.threads import cpu_cores

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = cpu_cores()
    return {
        "cpu": cpu,
        "cpu_cores": cores,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _fusion_gain(rows) -> str:
    fused = [r for r in rows if r["role"] == "fusion"]
    unimodal = [r for r in rows if r["role"] in ("image", "text")]
    if not fused or not unimodal:
        return ""
    best = max(fused, key=lambda r: r["accuracy"]["mean"])
    top = max(unimodal, key=lambda r: r["accuracy"]["mean"])
    gain = 100 * (best["accuracy"]["mean"] - top["accuracy"]["mean"])
    return (f" Best fused row ({best['label']}) vs best single modality ({top['label']}): "
            f"{gain:+.1f} points of accuracy.")


def render_markdown(results: Mapping[str, Any]) -> str:
    """Renders `results.json`'s content as the `results.md` report.

    Args:
        results: the dict `zoo.demo.run_demo` writes to `results.json`.

    Returns:
        Markdown text ending in a newline.
    """
    machine = results["machine"]
    device = f"{machine['cpu_cores']}-core CPU ({machine['cpu']})"
    if machine["gpus"]:
        device += f", {machine['gpus']} GPU(s)"
    seeds = results["seeds"]
    lines = [
        "# MNIST+text demo: results",
        "",
        f"Measured {results['date']} on a {device}; TensorFlow {machine['tensorflow']}, Keras {machine['keras']}.",
        f"Grid `{results['grid']}`, {seeds} seed{'s' if seeds > 1 else ''}"
        + (" (mean ± sample standard deviation)" if seeds > 1 else "")
        + f"; total time {_duration(results['total_seconds'])} (`{results['command']}`)"
        + (f", {results['reused_trials']} trial(s) reused from an earlier run into the same folder"
           if results.get("reused_trials") else "") + ".",
        "Accuracy, precision, recall and F1 are on each config's test split; precision, recall and F1 are "
        "macro averages over classes. Training time is wall-clock time of `zoo.train` (including "
        "tracing and checkpoints).",
        "",
    ]
    rows = results["rows"]
    for config in dict.fromkeys(r["config"] for r in rows):
        config_rows = [r for r in rows if r["config"] == config]
        lines += [f"## {CONFIG_TITLES.get(config, config)}", "",
                  f"Test examples: {config_rows[0]['num_test_examples']:,}." + _fusion_gain(config_rows), "",
                  format_table(config_rows), ""]
    if results.get("sections"):
        from zoo.demo.sections import render_sections

        references = [r for r in rows if r["model"] in ("cnn_image", "cnn_seed")]
        lines += render_sections(results["sections"]["runs"], references)
    lines += ["## Targets", ""]
    for target in results["targets"]:
        status = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        lines.append(f"- {target['description']}: **{status}** ({target['detail']})")
    lines += ["", "## Recipes", ""]
    for name, recipe in results["recipes"].items():
        lines.append(f"- `{name}`: {recipe['description']}.")
    batch = "each recipe's" if results["batch_size"] is None else str(results["batch_size"])
    lines += ["", f"Batch size: {batch}. Text towers in the fusion and text-only rows: "
              f"{describe_text_tower(results['text_tower'])} (the seed rows keep the seed's towers); text length in tokens (the longest text of each config): "
              + ", ".join(f"{config} {length}" for config, length in results["max_length"].items()) + ".",
              "", "## Files", ""]
    for name, value in results["artifacts"].items():
        lines.append(f"- {name}: `{value}`" if value else f"- {name}: not written")
    for note in results.get("notes", []):
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


def now() -> str:
    """The current local date and time, ISO 8601 to the minute, with the UTC offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="minutes")
