"""The audio demo's grid, and (slow) the whole `zoo demo --data av --quick` on the real data."""

import json
import os

import numpy as np
import pytest

import zoo
from zoo.demo import audio as audio_demo


def test_grid_has_every_unimodal_role_and_registered_fusions():
    roles = {row.role for row in audio_demo.AV_GRID}
    assert roles == {"image", "audio", "text", "fusion"}
    for row in audio_demo.AV_GRID:
        entry = zoo.registry.get_entry(row.model)
        assert (entry.fusion is not None) == (row.role == "fusion"), row
        if row.role != "fusion":
            assert entry.modalities == (row.role,), row
    assert audio_demo.GATED_MODEL in {row.model for row in audio_demo.AV_GRID}, "the gate plot needs its model"


@pytest.mark.slow
def test_quick_audio_demo_end_to_end(tmp_path):
    if not os.environ.get("ZOO_DATA_DIR"):
        pytest.skip("set ZOO_DATA_DIR to the folder holding mnist/ and fsdd/")
    from zoo.cli.main import main

    assert main(["demo", "--data", "av", "--quick", "--out", str(tmp_path / "out"),
                 "--data-dir", str(tmp_path / "tfds")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [row["label"] for row in results["rows"]] == [row.label for row in audio_demo.QUICK_AV_GRID]
    assert all(0.0 <= row["accuracy"]["mean"] <= 1.0 for row in results["rows"])
    assert (tmp_path / "out" / "spectrogram_gates.png").stat().st_size > 10_000


@pytest.mark.slow
def test_av_batches_are_model_ready(tmp_path):
    if not os.environ.get("ZOO_DATA_DIR"):
        pytest.skip("set ZOO_DATA_DIR to the folder holding mnist/ and fsdd/")
    from zoo.data import audio

    features, label = next(iter(audio.make_dataset("av", "test[:32]", batch_size=32, data_dir=tmp_path)))
    assert features["audio"].dtype.name == "float32" and np.abs(features["audio"].numpy()).max() <= 1.0
    assert features["image"].shape == (32, 28, 28, 1) and label.shape == (32,)
    raw, _ = next(iter(audio.make_dataset("av", "test[:32]", batch_size=32, mode="raw", data_dir=tmp_path)))
    np.testing.assert_allclose(raw["audio"].numpy() / 32768.0, features["audio"].numpy())
