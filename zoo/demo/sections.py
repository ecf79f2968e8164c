"""The demo's sections beyond the classifier grid: dual encoder, captioning, transfer, pretrained towers.

Which sections run, and how long they train, depends on the grid (configs as
code, like the grids):

| grid | dual encoder | captioner | transfer | pretrain → fine-tune |
|---|---|---|---|---|
| `quick` | 1 epoch on 1,000 examples | 1 epoch on 1,000, 200 test images | — | — |
| `default` | 3 epochs (about 2.5 min per seed) | 1 epoch, 2,000 test images (about 2 min) | — | — |
| `full` | 5 epochs | 3 epochs, the whole test split | 1/10/100% of vqa labels (about 6 min per seed) | `zoo.demo.pretrain_finetune` (about 9 min per seed) |

Each seed's section writes its JSON into `OUT/sections/<section>_s<seed>/`; a
later demo into the same folder with the same settings reuses it. The
pretrain → fine-tune table pretrains its towers once for all seeds, in
`OUT/pretrain_finetune/`, and keeps the rows it finished there.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable

import numpy as np

from zoo.core.jsonio import write_json
from zoo.demo import captioning, contrastive, pretrain_finetune, transfer

__all__ = ["SectionPlan", "SECTION_PLANS", "run_sections", "summarize_sections", "render_sections"]


@dataclasses.dataclass(frozen=True)
class SectionPlan:
    """How a grid runs the sections (None = the section does not run)."""

    contrastive_epochs: int
    contrastive_train_limit: int | None
    caption_epochs: int
    caption_train_limit: int | None
    caption_test_limit: int | None
    transfer: bool
    pretrain_finetune: bool = False


SECTION_PLANS = {
    "quick": SectionPlan(1, 1000, 1, 1000, 200, False),
    "default": SectionPlan(3, None, 1, None, 2000, False),
    "full": SectionPlan(5, None, 3, None, None, True, pretrain_finetune=True),
}


def _cached(folder: str, name: str, settings: dict, compute: Callable[[], object]):
    path = os.path.join(folder, f"{name}_section.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        if saved.get("settings") == settings:
            return saved["result"]
    result = compute()
    write_json(path, {"settings": settings, "result": result}, sort_keys=False)
    return result


def run_sections(out: str, grid: str, seeds: int, *, data_dir=None, source_dir=None,
                 say: Callable[[str], None] = lambda line: None) -> dict:
    """Runs the grid's sections for seeds 0..seeds-1; returns {section: [one result per seed]}.

    Raises:
        ValueError: for a grid without a section plan.
    """
    if grid not in SECTION_PLANS:
        raise ValueError(f"grid={grid!r} has no section plan; expected one of {list(SECTION_PLANS)}.")
    plan = SECTION_PLANS[grid]
    results = {"contrastive": [], "captioning": [], "transfer": []}
    for seed in range(seeds):
        for name, result in _seed_sections(os.path.join(out, "sections", f"s{seed}"), plan, seed, data_dir,
                                           source_dir, say).items():
            results[name].append(result)
    if plan.pretrain_finetune:
        say(f"pretrain -> fine-tune: towers pretrained on digits and caption, then vqa at 1/10/100% of the "
            f"labels, {seeds} seed(s)")
        results["pretrain_finetune"] = pretrain_finetune.run_table(
            os.path.join(out, "pretrain_finetune"), seeds=seeds, data_dir=data_dir)
    return results


def _seed_sections(folder, plan: SectionPlan, seed: int, data_dir, source_dir, say) -> dict:
    data = {"data_dir": data_dir, "source_dir": source_dir}
    settings = contrastive.ContrastiveSettings(epochs=plan.contrastive_epochs, train_limit=plan.contrastive_train_limit)
    say(f"dual encoder / seed {seed}: {settings.epochs} epoch(s) on describe")
    results = {"contrastive": _cached(folder, "contrastive", dataclasses.asdict(settings), functools.partial(
        contrastive.run_trial, os.path.join(folder, "contrastive"), settings, seed, **data))}
    say(f"captioner / seed {seed}: {plan.caption_epochs} epoch(s) on describe")
    train_split = contrastive.limited_split("train", plan.caption_train_limit, **data)
    eval_split = contrastive.limited_split("test", plan.caption_test_limit, **data)
    caption_settings = {"epochs": plan.caption_epochs, "train": train_split, "eval": eval_split}
    results["captioning"] = _cached(folder, "captioning", caption_settings, functools.partial(
        captioning.run_trial, os.path.join(folder, "captioning"), seed, epochs=plan.caption_epochs,
        train_split=train_split, eval_split=eval_split, **data))
    if plan.transfer:
        say(f"transfer / seed {seed}: vqa at 1/10/100% of the labels, random and contrastive towers")
        results["transfer"] = _cached(folder, "transfer", {"fractions": transfer.FRACTIONS}, functools.partial(
            transfer.run_transfer, os.path.join(folder, "transfer"), seed,
            pretrained=os.path.join(folder, "contrastive", "run"), **data))
    return results


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _cell(values, scale=100.0, digits=2) -> str:
    mean, std = _mean_std(values)
    return f"{mean * scale:.{digits}f}" + (f" ± {std * scale:.{digits}f}" if len(values) > 1 else "")


def summarize_sections(sections: dict) -> dict:
    """Mean and sample std over seeds of every figure: {section: {figure: [mean, std, seeds]}}."""
    summary = {}
    for name in ("contrastive", "captioning"):
        runs = sections.get(name) or []
        flat = [_flatten(run) for run in runs]
        keys = [k for k in (flat[0] if flat else {}) if all(isinstance(f.get(k), int | float) for f in flat)]
        summary[name] = {k: [*_mean_std([f[k] for f in flat]), len(flat)] for k in keys}
    rows = [row for run in sections.get("transfer") or [] for row in run]
    summary["transfer"] = {
        f"{fraction}pct_{init}": [*_mean_std([r["test_accuracy"] for r in rows if (r["fraction"], r["init"]) == (fraction, init)]),
                                  sum((r["fraction"], r["init"]) == (fraction, init) for r in rows)]
        for fraction in transfer.FRACTIONS for init in ("random", "contrastive") if rows
    }
    rows = sections.get("pretrain_finetune") or []
    summary["pretrain_finetune"] = {
        f"{fraction}_{start}": [*_mean_std(picked), len(picked)]
        for fraction in pretrain_finetune.FRACTIONS for start in ("pretrained", "random")
        for picked in [[r["test_accuracy"] for r in rows if (r["fraction"], r["start"]) == (fraction, start)]]
        if picked
    }
    return summary


def _flatten(run: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in run.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}_"))
        elif not isinstance(value, list | str | bool):
            flat[f"{prefix}{key}"] = value
    return flat


def render_sections(sections: dict, reference_rows=()) -> list[str]:
    """Markdown lines of the sections' tables (mean ± std over seeds), with the supervised image rows beside."""
    lines = []
    runs = sections.get("contrastive") or []
    if runs:
        def get(key):
            return [run[key] for run in runs]

        lines += ["## Contrastive dual encoder (describe)", "",
                  f"`{runs[0]['model']}`, {runs[0]['epochs']} epochs, {len(runs)} seed(s); test split, 10,000 images.", "",
                  "| figure | % |", "|---|---:|",
                  f"| zero-shot digit accuracy (prompt ensemble) | {_cell(get('zero_shot_accuracy'))} |",
                  f"| zero-shot digit accuracy (nearest prompt) | {_cell(get('zero_shot_nearest_prompt_accuracy'))} |",
                  f"| linear probe on the frozen image embedding | {_cell(get('linear_probe_accuracy'))} |"]
        for row in reference_rows:
            lines.append(f"| supervised `{row['label']}` on {row['config']} (for reference) | "
                         f"{row['accuracy']['mean'] * 100:.2f} |")
        lines += ["", "| retrieval | relevance | R@1 | R@5 | R@10 | mAP@10 |", "|---|---|---:|---:|---:|---:|"]
        for direction, title in (("t2i", "text → image"), ("i2t", "image → text")):
            for relevance in ("class", "attribute"):
                cells = [_cell(get(f"{direction}_{relevance}_{m}")) for m in ("recall@1", "recall@5", "recall@10", "map@10")]
                lines.append(f"| {title} | {relevance} | " + " | ".join(cells) + " |")
        lines.append("")
    captions = sections.get("captioning") or []
    if captions:
        lines += ["## Captioning (describe)", "", f"`cnn_lstm_captioner`, {captions[0]['epochs']} epoch(s), "
                  f"{len(captions)} seed(s).", "", "| decoding | exact match % | digit correct % | BLEU-4 | seconds |",
                  "|---|---:|---:|---:|---:|"]
        for name in ("greedy", "beam3"):
            values = {key: [run[name][key] for run in captions]
                      for key in ("exact_match", "digit_correct", "bleu4", "decode_seconds")}
            lines.append(f"| {name} | {_cell(values['exact_match'])} | {_cell(values['digit_correct'])} | "
                         f"{_cell(values['bleu4'], scale=1.0)} | {_cell(values['decode_seconds'], scale=1.0, digits=0)} |")
        lines.append("")
    rows = [row for run in sections.get("transfer") or [] for row in run]
    if rows:
        lines += ["## Transfer to vqa", "", "| labels | random init % | contrastive towers % |", "|---|---:|---:|"]
        for fraction in transfer.FRACTIONS:
            picked = {init: [r["test_accuracy"] for r in rows if (r["fraction"], r["init"]) == (fraction, init)]
                      for init in ("random", "contrastive")}
            lines.append(f"| {fraction}% | {_cell(picked['random'])} | {_cell(picked['contrastive'])} |")
        lines.append("")
    rows = sections.get("pretrain_finetune") or []
    if rows:
        lines += ["## Pretrain → fine-tune (pretrained towers, vqa)", "",
                  f"`{pretrain_finetune.MODEL}` built from KerasHub presets the zoo pretrained itself (an image "
                  "backbone on digits, a text backbone on caption), towers frozen for the first half of the epochs "
                  f"and unfrozen at {pretrain_finetune.MULTIPLIER:g} times the learning rate, against the same model "
                  "from random initialisation; test accuracy on the whole vqa test split.", "",
                  pretrain_finetune.markdown(rows)]
    return lines
