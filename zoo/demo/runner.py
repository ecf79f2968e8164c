"""`run_demo`: the whole experiment, from data to the report and its figures.

>>> from zoo.demo import run_demo
>>> results = run_demo("demo_out", grid="quick", log=None)
>>> [row["label"] for row in results["rows"]][:2]
['cnn_seed (seed recipe)', 'cnn_seed (zoo+augment recipe)']
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zoo.core.atomic import atomic_save_model, atomic_write_text
from zoo.core.jsonio import to_json, write_json
from zoo.demo import experiment, plots, report
from zoo.demo.datacontext import FULL_SPLITS, QUICK_SPLITS, Splits, prepare_data
from zoo.demo.grids import GridEntry, Trial, plan
from zoo.demo.recipes import RECIPES, TEXT_TOWER
from zoo.demo.retrieval_figure import retrieval_figure
from zoo.demo.sections import SECTION_PLANS, run_sections, summarize_sections

__all__ = ["run_demo", "trial_settings", "ARTIFACTS", "TRIAL_RECORD"]

# File names inside the output folder.
ARTIFACTS = {
    "results_json": "results.json",
    "results_md": "results.md",
    "training_curves": "training_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "attention_map": "attention_map.png",
    "model_diagram": "model_diagram.png",
    "best_model": "best_model.keras",
    "saved_model": "best_model_savedmodel",
    "retrieval": "retrieval.png",
}
# Written into each trial's run directory when it finishes.
TRIAL_RECORD = "demo_trial.json"
# The config whose best fused model is saved, exported and shown.
PRIMARY_CONFIG = "vqa"
ATTENTION_MODEL = "cnn_lstm_xattn"
ATTENTION_EXAMPLES = 4


def run_demo(
    out: str | os.PathLike = "demo_out",
    *,
    grid: str | Sequence[GridEntry] = "default",
    seeds: int = 1,
    data_dir: str | os.PathLike | None = None,
    source_dir: str | os.PathLike | None = None,
    splits: Splits | None = None,
    batch_size: int | None = None,
    export: bool = True,
    reuse: bool = True,
    verbose: int = 0,
    log: Callable[[str], None] | None = print,
    command: str | None = None,
    sections: bool = True,
) -> dict[str, Any]:
    """Trains and evaluates every row of a grid and writes the report and figures into `out`.

    Args:
        out: the output folder (created if needed). It receives `results.json`,
            `results.md`, `training_curves.png`, `confusion_matrix.png` (best
            model), `attention_map.png` (cross-attention model),
            `model_diagram.png`, `best_model.keras`, `best_model_savedmodel/`
            and one `zoo.train` run directory per trial under `runs/`.
        grid: "quick", "default" or "full" (see `zoo.demo.grids.GRIDS`), or
            a list of `zoo.demo.GridEntry` (e.g. from `make_entry`).
        seeds: seeds per row (0..seeds-1); the table shows mean ± std when > 1.
        data_dir: TFDS data directory (None = TFDS's default).
        source_dir: folder of the official MNIST files (None = `ZOO_DATA_DIR`).
        splits: examples read per split; None = a few hundred for the quick
            grid (`QUICK_SPLITS`), whole splits otherwise.
        batch_size: training batch size for every row; None = each row's recipe's.
        export: also export the best model as a SavedModel through `zoo.export`.
        reuse: keep the results of trials already finished in `out` with the
            same settings (an interrupted demo continues where it stopped);
            False retrains every trial.
        verbose: 1 = `zoo.train` prints a line per epoch.
        log: called with each progress line; None = silent.
        command: the command line to record in the report.
        sections: also run the dual encoder, captioning and (full grid)
            transfer sections of `zoo.demo.sections` for a named grid, and
            draw `retrieval.png`.

    Returns:
        The content of `results.json`: `rows` (the table), `trials` (every run),
        `targets`, `artifacts` (paths relative to `out`), `notes`, and the settings.

    Raises:
        ValueError: for an unknown grid or a bad seed count or batch size.
        FileNotFoundError: if the MNIST files cannot be found.
    """
    start = time.perf_counter()
    say = log or (lambda line: None)
    trials = plan(grid, seeds)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r}: expected a positive int or None.")
    grid_name = grid if isinstance(grid, str) else "custom"
    splits = splits or (QUICK_SPLITS if grid_name == "quick" else FULL_SPLITS)
    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)

    data = {}
    for config in dict.fromkeys(trial.entry.config for trial in trials):
        say(f"preparing data: {config}")
        data[config] = prepare_data(config, data_dir=data_dir, source_dir=source_dir)

    records = []
    reused = 0
    for index, trial in enumerate(trials, start=1):
        entry = trial.entry
        say(f"[{index}/{len(trials)}] {entry.config} / {entry.label} / seed {trial.seed}: "
            f"{entry.epochs} epoch{'s' if entry.epochs > 1 else ''}, {entry.recipe} recipe")
        settings = trial_settings(trial, splits, batch_size)
        record = _finished_record(out, trial, settings) if reuse else None
        if record is not None:
            reused += 1
            say("    already trained with these settings: reusing its results (--fresh retrains)")
        else:
            record = experiment.train_trial(trial, data[entry.config], out, splits=splits, batch_size=batch_size,
                                            verbose=verbose)
            record["settings"] = settings
            write_json(os.path.join(record["run_dir"], TRIAL_RECORD), record, sort_keys=False)
        records.append(record)
        say(f"    test accuracy {record['test']['accuracy']:.2%}, macro F1 {record['test']['macro_f1']:.2%}, "
            f"{record['train_seconds']:.0f} s")

    rows = report.summarize(records)
    notes: list[str] = []
    artifacts: dict[str, str | None] = {name: None for name in ARTIFACTS}

    curves = {}
    for record in records:
        if record["seed"] == trials[0].seed:
            curves.setdefault(record["config"], {})[record["label"]] = record["history"]
    plots.plot_training_curves(curves, os.path.join(out, ARTIFACTS["training_curves"]),
                               title="Training loss and validation accuracy per epoch (first seed)")
    artifacts["training_curves"] = ARTIFACTS["training_curves"]

    best_record = _best_fused_record(rows, records)
    if best_record is None:
        notes.append("no fused model in the grid: no best model, confusion matrix or diagram")
    else:
        artifacts.update(_best_model_artifacts(best_record, data[best_record["config"]], out, export, notes))
    attention_record = next(
        (r for r in records if r["model"] == ATTENTION_MODEL and r["config"] == PRIMARY_CONFIG
         and r["seed"] == trials[0].seed), None)
    if attention_record is None:
        notes.append(f"no {ATTENTION_MODEL} row on {PRIMARY_CONFIG}: no attention map")
    else:
        _attention_map(attention_record, data[PRIMARY_CONFIG], os.path.join(out, ARTIFACTS["attention_map"]))
        artifacts["attention_map"] = ARTIFACTS["attention_map"]

    section_runs = None
    if sections and grid_name in SECTION_PLANS:
        section_runs = run_sections(out, grid_name, seeds, data_dir=data_dir, source_dir=source_dir, say=say)
        run_dir = os.path.join(out, "sections", "s0", "contrastive", "run")
        retrieval_figure(run_dir, os.path.join(out, ARTIFACTS["retrieval"]), data_dir=data_dir, source_dir=source_dir)
        artifacts["retrieval"] = ARTIFACTS["retrieval"]

    artifacts["results_json"] = ARTIFACTS["results_json"]
    artifacts["results_md"] = ARTIFACTS["results_md"]
    results = {
        "date": report.now(),
        "command": command or f"run_demo(grid={grid_name!r}, seeds={seeds})",
        "grid": grid_name,
        "seeds": seeds,
        "machine": report.machine_description(),
        "splits": dataclasses.asdict(splits),
        "batch_size": batch_size,
        "text_tower": TEXT_TOWER,
        "max_length": {c: d.max_length for c, d in data.items() if d.has_text},
        "recipes": {name: dataclasses.asdict(recipe) for name, recipe in RECIPES.items()},
        "total_seconds": time.perf_counter() - start,
        "reused_trials": reused,
        "rows": rows,
        "targets": report.check_targets(rows),
        "best": None if best_record is None else {
            "config": best_record["config"], "label": best_record["label"], "seed": best_record["seed"],
            "test_accuracy": best_record["test"]["accuracy"],
            "export_check": best_record.get("export_check"),
        },
        "artifacts": artifacts,
        "notes": notes,
        "trials": [_relative(record, out) for record in records],
        "sections": None if section_runs is None else {"runs": section_runs,
                                                       "summary": summarize_sections(section_runs)},
    }
    write_json(os.path.join(out, ARTIFACTS["results_json"]), results, sort_keys=False)
    atomic_write_text(os.path.join(out, ARTIFACTS["results_md"]), report.render_markdown(results))
    say("")
    say(report.render_markdown(results))
    return results


def trial_settings(trial: Trial, splits: Splits, batch_size: int | None) -> dict[str, Any]:
    """Everything that decides a trial's outcome, as JSON: a finished trial is reused only if it matches."""
    from zoo.datasets.mnist_text.mnist_text_dataset_builder import Builder

    recipe = RECIPES[trial.entry.recipe]
    return to_json({
        # A new dataset version means new data: rows trained on the old one are not reused.
        "dataset": f"mnist_text/{trial.entry.config}:{Builder.VERSION}",
        "entry": dataclasses.asdict(trial.entry),
        "seed": trial.seed,
        "splits": dataclasses.asdict(splits),
        "batch_size": batch_size or recipe.batch_size,
        "recipe": dataclasses.asdict(recipe),
    })


def _finished_record(out: str, trial: Trial, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The record of this trial from an earlier run into `out`, if it finished with the same settings."""
    run_dir = os.path.join(out, "runs", trial.run_name)
    try:
        with open(os.path.join(run_dir, TRIAL_RECORD), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    if record.get("settings") != settings or not os.path.isfile(os.path.join(run_dir, "model.keras")):
        return None
    # The folder may have moved since: paths are taken from where it is now.
    return {**record, "run_dir": run_dir}


def _relative(record, out):
    return {**record, "run_dir": os.path.relpath(record["run_dir"], out)}


def _best_fused_record(rows, records):
    fused = [r for r in rows if r["role"] == "fusion"]
    if not fused:
        return None
    primary = [r for r in fused if r["config"] == PRIMARY_CONFIG] or fused
    row = max(primary, key=lambda r: r["accuracy"]["mean"])
    # The row's first seed is saved: picking the luckiest seed would flatter the test score.
    return next(r for r in records if r["config"] == row["config"] and r["label"] == row["label"])


def _load(record):
    from zoo.export import load_model

    return load_model(os.path.join(record["run_dir"], "model.keras"))


def _best_model_artifacts(record, data, out, export, notes):
    artifacts = {}
    model = _load(record)
    atomic_save_model(model, os.path.join(out, ARTIFACTS["best_model"]), overwrite=True)
    artifacts["best_model"] = ARTIFACTS["best_model"]

    accuracy = record["test"]["accuracy"]
    plots.plot_confusion_matrix(
        record["test"]["confusion_matrix"], data.class_names, os.path.join(out, ARTIFACTS["confusion_matrix"]),
        title=f"{record['label']} on {record['config']} test ({accuracy:.2%} accurate)",
    )
    artifacts["confusion_matrix"] = ARTIFACTS["confusion_matrix"]

    note = plots.plot_model_diagram(model, os.path.join(out, ARTIFACTS["model_diagram"]))
    if note:
        notes.append(note)
    else:
        artifacts["model_diagram"] = ARTIFACTS["model_diagram"]

    if export:
        from zoo.export import export_model

        path = os.path.join(out, ARTIFACTS["saved_model"])
        export_model(model, path, vocabulary=data.vocabulary, class_names=data.class_names, overwrite=True)
        artifacts["saved_model"] = ARTIFACTS["saved_model"]
        record["export_check"] = _check_export(model, path, data)
    return artifacts


def _check_export(model, path, data, count: int = 64) -> dict[str, Any]:
    """Runs the exported SavedModel on raw test examples and compares it with the Keras model."""
    import tensorflow as tf

    from zoo.core import keys

    features, _ = next(iter(data.dataset(data.split("test", count), batch_size=count, mode="raw")))
    served = tf.saved_model.load(path).signatures["serving_default"]
    raw = {keys.IMAGE: features[keys.IMAGE]}
    if data.has_text:
        raw[keys.TEXT] = features[keys.TEXT]
    exported = served(**raw)["label"].numpy()
    inputs = {keys.IMAGE: tf.cast(features[keys.IMAGE], tf.float32) / 255.0}
    if data.has_text:
        inputs[keys.TOKEN_IDS] = data.tokenizer(features[keys.TEXT])
    keras_labels = np.asarray(model({t.name: inputs[t.name] for t in model.inputs}, training=False)).argmax(-1)
    return {"examples": int(len(exported)), "same_predictions": int(np.sum(exported == keras_labels))}


def _attention_map(record, data, path):
    import tensorflow as tf

    from zoo.core import keys
    from zoo.data.text import split_words
    from zoo.models import attention_scores

    model = _load(record)
    features, labels = next(iter(data.dataset("test", batch_size=ATTENTION_EXAMPLES, mode="raw")))
    texts = features[keys.TEXT]
    inputs = {keys.IMAGE: tf.cast(features[keys.IMAGE], tf.float32) / 255.0, keys.TOKEN_IDS: data.tokenizer(texts)}
    scores = attention_scores(model, inputs)
    predicted = np.asarray(model(inputs, training=False)).argmax(-1)
    words = [[w.decode("utf-8") for w in row] for row in split_words(texts).to_list()]
    words = [row[: data.max_length] for row in words]
    names = data.class_names
    answers = [f"true: {names[int(t)]}, predicted: {names[int(p)]}" for t, p in zip(labels.numpy(), predicted, strict=True)]
    plots.plot_attention_maps(
        features[keys.IMAGE].numpy(), [t.decode("utf-8") for t in texts.numpy()], words, scores, path,
        title=f"{record['label']}: where each word of the question looks in the image", answers=answers,
    )
