"""The pretrain -> fine-tune table: its layout, and (slow) a quick run end to end on real data."""

import os

import pytest

from zoo.demo import pretrain_finetune


def test_table_gives_mean_and_sample_std_per_fraction_and_start():
    rows = [
        {"start": start, "fraction": 0.1, "seed": seed, "examples": 5500, "epochs": 4,
         "test_accuracy": accuracy, "train_seconds": seconds}
        for start, seed, accuracy, seconds in [("pretrained", 0, 0.90, 10.0), ("pretrained", 1, 0.80, 14.0),
                                               ("random", 0, 0.5, 9.0)]
    ]
    lines = pretrain_finetune.markdown(rows).splitlines()
    assert lines[2] == "| 10% | pretrained presets, frozen then unfrozen | 5,500 | 4 | 85.00 ± 7.07 | 12 ± 3 |"
    assert lines[3] == "| 10% | random initialisation | 5,500 | 4 | 50.00 ± 0.00 | 9 ± 0 |"
    assert len(lines) == 4


@pytest.mark.slow
def test_quick_run_pretrains_saves_presets_and_fine_tunes(tmp_path):
    if not os.environ.get("ZOO_DATA_DIR"):
        pytest.skip("needs the MNIST files (ZOO_DATA_DIR)")
    rows = pretrain_finetune.run_table(str(tmp_path), seeds=1, quick=True, data_dir=str(tmp_path / "tfds"))
    assert {(r["start"], r["fraction"]) for r in rows} == {
        (s, f) for s in ("pretrained", "random") for f in pretrain_finetune.FRACTIONS}
    assert (tmp_path / "presets" / "text" / "tokenizer.json").exists()
    assert (tmp_path / "pretrain_finetune.md").read_text().count("|") > 20


def test_full_grid_runs_the_table_into_the_demo_report(tmp_path, monkeypatch):
    from zoo.demo import sections

    assert sections.SECTION_PLANS["full"].pretrain_finetune
    assert not sections.SECTION_PLANS["default"].pretrain_finetune
    rows = [{"start": start, "fraction": fraction, "seed": 0, "examples": 550, "epochs": 8,
             "test_accuracy": accuracy, "train_seconds": 30.0}
            for fraction in pretrain_finetune.FRACTIONS
            for start, accuracy in (("pretrained", 0.8), ("random", 0.5))]
    calls = []
    monkeypatch.setattr(sections, "_seed_sections", lambda *args: {})
    monkeypatch.setattr(pretrain_finetune, "run_table",
                        lambda out, seeds, data_dir: calls.append((out, seeds, data_dir)) or rows)
    runs = sections.run_sections(str(tmp_path), "full", 2, data_dir="tfds")
    # Pretrained once for all seeds, in its own folder of the demo's output.
    assert calls == [(os.path.join(str(tmp_path), "pretrain_finetune"), 2, "tfds")]
    text = "\n".join(sections.render_sections(runs))
    assert "## Pretrain → fine-tune (pretrained towers, vqa)" in text
    assert "| 1% | pretrained presets, frozen then unfrozen | 550 | 8 | 80.00 ± 0.00 | 30 ± 0 |" in text
    summary = sections.summarize_sections(runs)["pretrain_finetune"]
    assert summary["0.01_pretrained"] == [0.8, 0.0, 1]
    assert summary["1.0_random"] == [0.5, 0.0, 1]
