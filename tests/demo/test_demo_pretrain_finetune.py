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
