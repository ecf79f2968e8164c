"""The audio demo: image-only, audio-only, text-only and fused models on mnist_audio/av.

`zoo demo --data av` (or `run_audio_demo`) trains every row of `AV_GRID` with
each seed through `zoo.train`, evaluates it on the test split and writes
`results.json`, `results.md` and `spectrogram_gates.png` (log-mel spectrograms
of test recordings beside their images, with the gated model's weight on
each modality) into the output folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.core.atomic import atomic_write_text
from zoo.core.jsonio import write_json
from zoo.demo import metrics as metrics_lib
from zoo.demo import plots, report
from zoo.demo.recipes import RECIPES, TEXT_TOWER
from zoo.training import data_overrides, train

__all__ = ["AvRow", "AV_GRID", "QUICK_AV_GRID", "run_audio_demo", "plot_spectrogram_gates"]

CONFIG = "av"
RECIPE = RECIPES["zoo"]
GATED_MODEL = "cnn_audio_gated"


@dataclasses.dataclass(frozen=True)
class AvRow:
    """One row of the audio demo: a registered model, its role and epochs, extra overrides."""

    model: str
    role: str  # "image", "audio", "text" or "fusion"
    epochs: int
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return self.model


_TEXT = tuple(sorted(TEXT_TOWER.items()))
# `zoo demo --data av --seeds 3`: 14 min 51 s on 2 CPU cores; best fused cnn_audio_lstm_gated 84.05 ± 3.03%,
# best unimodal melcnn_audio 66.12 ± 0.73% (README, "The audio demo").
AV_GRID = (
    AvRow("cnn_image", "image", 2),
    AvRow("melcnn_audio", "audio", 4),
    AvRow("rnn_text", "text", 2, _TEXT),
    # Fused rows need more epochs than either tower alone: after 2, seeds
    # ranged from 65% to 77% (measured while choosing the grid).
    AvRow("cnn_audio_concat", "fusion", 5),
    AvRow("cnn_audio_gated", "fusion", 5),
    AvRow("cnn_audio_lstm_concat", "fusion", 5, _TEXT),
    AvRow("cnn_audio_lstm_gated", "fusion", 5, _TEXT),
)
# `zoo demo --data av --quick`: one epoch on 512 examples per row, a smoke test.
QUICK_AV_GRID = tuple(dataclasses.replace(row, epochs=1) for row in AV_GRID if row.model != "cnn_audio_lstm_concat")
QUICK_LIMIT = 512


def _split(name: str, limit: int | None) -> str:
    return name if limit is None else f"{name}[:{limit}]"


def _train_row(row: AvRow, seed: int, out: str, context: dict[str, Any], limit: int | None, verbose: int):
    from zoo.data import audio as audio_data

    tokenizer, vocabulary, max_length = context["tokenizer"], context["vocabulary"], context["max_length"]

    def dataset(split, **kwargs):
        return audio_data.make_dataset(CONFIG, _split(split, limit), tokenizer=tokenizer, max_length=max_length,
                                       data_dir=context["data_dir"], source_dir=context["source_dir"], **kwargs)

    batch_size = RECIPE.batch_size
    num_train = audio_data.num_examples(CONFIG, _split("train", limit), data_dir=context["data_dir"],
                                        source_dir=context["source_dir"])
    steps = math.ceil(num_train / batch_size)
    overrides = data_overrides(row.model, num_classes=10, vocab_size=len(vocabulary), max_length=max_length,
                               overrides=dict(row.overrides))
    run_dir = os.path.join(out, "runs", row.label, f"seed{seed}")
    start = time.perf_counter()
    result = train(
        row.model, out=run_dir, model_overrides=overrides, vocabulary=vocabulary,
        dataset_fn=lambda ctx: dataset("train", batch_size=batch_size, shuffle=True, seed=seed, input_context=ctx),
        validation_fn=lambda ctx: dataset("validation", batch_size=256, input_context=ctx),
        extra_config={"data": f"mnist_audio/{CONFIG}", "demo_label": row.label},
        epochs=row.epochs, batch_size=batch_size, steps_per_epoch=steps, seed=seed,
        learning_rate=RECIPE.learning_rate, lr_schedule=RECIPE.lr_schedule,
        warmup_steps=RECIPE.warmup_steps(steps, row.epochs), checkpoint_every=0, keep_checkpoints=1, verbose=verbose,
    )
    seconds = time.perf_counter() - start
    names = [t.name for t in result.model.inputs]
    labels, predicted = [], []
    for features, label in dataset("test", batch_size=500):
        probabilities = result.model({n: features[n] for n in names}, training=False)
        labels.append(label.numpy())
        predicted.append(np.asarray(probabilities).argmax(-1))
    test = metrics_lib.classification_report(np.concatenate(labels), np.concatenate(predicted), 10)
    return {
        "config": CONFIG, "label": row.label, "model": row.model, "role": row.role, "recipe": RECIPE.name,
        "epochs": row.epochs, "seed": seed, "parameters": int(result.model.count_params()),
        "train_seconds": seconds, "test": test, "run_dir": run_dir,
    }


def run_audio_demo(
    out: str | os.PathLike = "demo_av",
    *,
    seeds: int = 3,
    quick: bool = False,
    data_dir=None,
    source_dir=None,
    verbose: int = 0,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Trains and evaluates every row of the audio grid; writes the report and the gate plot into `out`.

    Args:
        out: output folder (created if needed); each trial's run goes to `runs/<model>/seed<k>`.
        seeds: seeds per row (0..seeds-1).
        quick: `QUICK_AV_GRID` on the first 512 examples of each split.
        data_dir: TFDS data directory (None = TFDS's default).
        source_dir: folder holding `mnist/` and `fsdd/recordings/` (None = `ZOO_DATA_DIR`).
        verbose: 1 = a line per epoch.
        log: called with each progress line; None = silent.

    Returns:
        The content of `results.json`: `rows` (mean and std over seeds), `trials`, settings and times.

    Raises:
        ValueError: for a bad seed count.
    """
    from zoo.data import audio as audio_data
    from zoo.data.text import Tokenizer

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}: expected a positive int.")
    say = log or (lambda line: None)
    start = time.perf_counter()
    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    say(f"preparing data: mnist_audio/{CONFIG}")
    vocabulary = audio_data.fit_vocabulary(CONFIG, data_dir=data_dir, source_dir=source_dir)
    max_length = audio_data.longest_text(CONFIG, data_dir=data_dir, source_dir=source_dir)
    context = {"vocabulary": vocabulary, "max_length": max_length, "tokenizer": Tokenizer(vocabulary, max_length),
               "data_dir": data_dir, "source_dir": source_dir}
    grid, limit = (QUICK_AV_GRID, QUICK_LIMIT) if quick else (AV_GRID, None)
    records = []
    for row in grid:
        for seed in range(seeds):
            say(f"{row.label} / seed {seed}: {row.epochs} epoch(s)")
            record = _train_row(row, seed, out, context, limit, verbose)
            say(f"    test accuracy {record['test']['accuracy']:.2%}, macro F1 {record['test']['macro_f1']:.2%}, "
                f"{record['train_seconds']:.0f} s")
            records.append(record)
    rows = report.summarize(records)
    gated = next((r for r in records if r["model"] == GATED_MODEL and r["seed"] == 0), None)
    figure = None
    if gated is not None:
        figure = "spectrogram_gates.png"
        plot_spectrogram_gates(os.path.join(gated["run_dir"], "model.keras"), context, os.path.join(out, figure))
    results = {
        "date": report.now(), "grid": "quick" if quick else "av", "seeds": seeds,
        "machine": report.machine_description(), "recipe": dataclasses.asdict(RECIPE),
        "total_seconds": time.perf_counter() - start, "rows": rows, "figure": figure,
        "trials": [{**r, "run_dir": os.path.relpath(r["run_dir"], out)} for r in records],
    }
    write_json(os.path.join(out, "results.json"), results, sort_keys=False)
    table = report.format_table(rows)
    atomic_write_text(os.path.join(out, "results.md"),
                      f"# mnist_audio/av ({seeds} seed(s), {results['total_seconds'] / 60:.1f} min)\n\n{table}\n")
    say(table)
    return results


def plot_spectrogram_gates(model_path: str, context: dict[str, Any], path: str, count: int = 4) -> str:
    """Plots test images beside their recordings' log-mel spectrograms and the gated model's modality weights.

    The weight shown is the mean over features of the gate z of `fusion_gated`
    (1 = image only, 0 = audio only), with the image and audio degradations.

    Returns:
        The path written.
    """
    import keras
    import tensorflow_datasets as tfds

    from zoo.data import audio as audio_data
    from zoo.datasets.mnist_audio import generation
    from zoo.export import load_model

    model = load_model(model_path)
    builder = audio_data.load_builder(CONFIG, data_dir=context["data_dir"], source_dir=context["source_dir"])
    examples = list(tfds.as_numpy(builder.as_dataset(split=f"test[:{count}]", shuffle_files=False)))
    length = max(len(e["audio"]) for e in examples)
    inputs = {
        "image": np.stack([e["image"] for e in examples]).astype("float32") / 255.0,
        "audio": np.stack([np.pad(e["audio"], (0, length - len(e["audio"]))) for e in examples]).astype("float32")
        / audio_data.INT16_SCALE,
    }
    gate_layer = model.get_layer("fusion_gated")
    features = keras.Model(model.inputs, gate_layer.input)(inputs)
    gates = np.asarray(gate_layer.gate_values(features)).mean(axis=-1)
    spectrograms = np.asarray(keras.Model(model.inputs, model.get_layer("audio_time_major").output)(inputs))
    predicted = np.asarray(model(inputs, training=False)).argmax(-1)
    figure = plots._figure(10, 2.2 * count)
    axes = figure.subplots(count, 2, width_ratios=(1, 4))
    for i, example in enumerate(examples):
        axes[i, 0].imshow(example["image"][..., 0], cmap="gray")
        axes[i, 0].set_title(f"image: {generation.IMAGE_KINDS[example['image_kind']]}", fontsize=8)
        axes[i, 0].axis("off")
        axes[i, 1].imshow(spectrograms[i].T, origin="lower", aspect="auto", cmap="magma")
        axes[i, 1].set_ylabel("mel bin")
        axes[i, 1].set_title(
            f"audio: {generation.AUDIO_KINDS[example['audio_kind']]}; gate: image {gates[i]:.2f}, audio {1 - gates[i]:.2f}; "
            f"true {generation.DIGIT_NAMES[example['label']]}, predicted {generation.DIGIT_NAMES[predicted[i]]}",
            fontsize=8,
        )
    axes[-1, 1].set_xlabel("frame (16 ms hop)")
    figure.suptitle(f"{model.name}: log-mel spectrogram (dB) and the gate's weight on each modality")
    return plots.save_figure(figure, path)
