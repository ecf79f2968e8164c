"""The results table: summaries over seeds, target checks, Markdown, atomic files."""

import os

import pytest

from zoo.core.atomic import atomic_path
from zoo.demo import report


def _record(config, label, role, accuracy, seed=0, model=None, recipe="zoo", epochs=3, seconds=10.0):
    test = {"accuracy": accuracy, "macro_precision": accuracy - 0.01, "macro_recall": accuracy - 0.02,
            "macro_f1": accuracy - 0.015, "num_examples": 100}
    return {"config": config, "label": label, "model": model or label, "role": role, "recipe": recipe,
            "epochs": epochs, "parameters": 1234, "seed": seed, "test": test, "train_seconds": seconds}


def _rows(vqa_best=0.995, concat=0.98, digits=0.994):
    return report.summarize([
        _record("digits", "cnn_seed (seed recipe)", "digits", 0.989, model="cnn_seed", recipe="seed", epochs=5),
        _record("digits", "cnn_seed (zoo+augment recipe)", "digits", digits, model="cnn_seed", epochs=5),
        _record("vqa", "cnn_image", "image", 0.36),
        _record("vqa", "rnn_text", "text", 0.42),
        _record("vqa", "cnn_lstm_concat", "fusion", concat),
        _record("vqa", "cnn_lstm_film", "fusion", vqa_best),
    ])


def test_summarize_gives_mean_and_sample_std_over_seeds():
    rows = report.summarize([
        _record("vqa", "cnn_lstm_film", "fusion", 0.97, seed=0, seconds=10),
        _record("vqa", "cnn_lstm_film", "fusion", 0.99, seed=1, seconds=14),
        _record("vqa", "rnn_text", "text", 0.42, seed=0),
    ])
    assert [r["label"] for r in rows] == ["cnn_lstm_film", "rnn_text"]
    film = rows[0]
    assert film["seeds"] == [0, 1]
    assert film["accuracy"]["mean"] == pytest.approx(0.98)
    assert film["accuracy"]["std"] == pytest.approx(0.0141421, rel=1e-4)
    assert film["train_seconds"]["mean"] == pytest.approx(12)
    assert rows[1]["accuracy"]["std"] is None


def test_summarize_refuses_rows_whose_trials_disagree():
    with pytest.raises(ValueError, match="cnn_lstm_film: trials disagree on epochs"):
        report.summarize([_record("vqa", "cnn_lstm_film", "fusion", 0.9, epochs=3),
                          _record("vqa", "cnn_lstm_film", "fusion", 0.9, seed=1, epochs=4)])


def test_targets_met():
    targets = {t["name"]: t for t in report.check_targets(_rows())}
    assert targets["best_fused_vqa"]["met"] is True
    assert "cnn_lstm_film: 99.50%" in targets["best_fused_vqa"]["detail"]
    assert targets["fused_margin"]["met"] is True
    assert targets["fused_margin"]["value"] == pytest.approx(0.98 - 0.42)
    assert targets["digits_zoo_recipe"]["met"] is True
    assert "as in the seed (5 epochs): 98.90%" in targets["digits_zoo_recipe"]["detail"]


def test_targets_not_met_are_reported_with_the_measured_value():
    targets = {t["name"]: t for t in report.check_targets(_rows(vqa_best=0.985, concat=0.55, digits=0.992))}
    assert targets["best_fused_vqa"]["met"] is False
    assert targets["best_fused_vqa"]["value"] == pytest.approx(0.985)
    assert targets["fused_margin"]["met"] is False
    assert "cnn_lstm_concat 55.00% vs best unimodal row rnn_text 42.00%" in targets["fused_margin"]["detail"]
    assert targets["digits_zoo_recipe"]["met"] is False


def test_targets_without_their_rows_are_not_measured():
    # The margin is judged on vqa only: on caption the image alone is strong.
    rows = report.summarize([_record("caption", "cnn_image", "image", 0.93),
                             _record("caption", "cnn_lstm_concat", "fusion", 0.95)])
    assert [t["met"] for t in report.check_targets(rows)] == [None, None, None]


def test_table_shows_mean_plus_minus_std_for_several_seeds():
    rows = report.summarize([_record("vqa", "cnn_lstm_film", "fusion", 0.97, seed=0),
                             _record("vqa", "cnn_lstm_film", "fusion", 0.99, seed=1)])
    table = report.format_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| model | parameters | epochs | test accuracy (%)")
    assert lines[2] == "| cnn_lstm_film | 1,234 | 3 | 98.00 ± 1.41 | 97.00 ± 1.41 | 96.00 ± 1.41 | 96.50 ± 1.41 | 10 ± 0 |"


def _results(rows):
    return {
        "date": "2025-01-01T10:00+00:00", "command": "zoo demo", "grid": "default", "seeds": 1,
        "machine": {"cpu": "Test CPU", "cpu_cores": 2, "gpus": 0, "tensorflow": "2.x", "keras": "3.x"},
        "total_seconds": 754.0, "rows": rows, "targets": report.check_targets(rows),
        "recipes": {"zoo": {"description": "warm-up and cosine"}}, "batch_size": 128,
        "text_tower": {"embed_dim": 32, "rnn_units": (64,)}, "max_length": {"vqa": 7},
        "artifacts": {"results_json": "results.json", "attention_map": None}, "notes": ["a note"],
    }


def test_markdown_report_has_header_tables_targets_and_files():
    text = report.render_markdown(_results(_rows()))
    assert "Measured 2025-01-01T10:00+00:00 on a 2-core CPU (Test CPU)" in text
    assert "total time 12 min 34 s" in text
    assert "## digits:" in text and "## vqa:" in text
    assert "| cnn_lstm_film | 1,234 | 3 | 99.50 |" in text
    assert "Best fused row (cnn_lstm_film) vs best single modality (rnn_text): +57.5 points" in text
    assert "**met**" in text and "NOT met" not in text
    assert "embedding 32, LSTM 64" in text and "vqa 7" in text
    assert "- attention_map: not written" in text and "- note: a note" in text


def test_atomic_path_leaves_the_target_alone_when_the_writer_fails(tmp_path):
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            assert tmp.endswith(".png") and os.path.dirname(tmp) == str(tmp_path)
            with open(tmp, "wb") as handle:
                handle.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["plot.png"]
