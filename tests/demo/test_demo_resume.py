"""An interrupted or repeated demo reuses the trials it already finished, and only those."""

import pytest

from zoo.demo import experiment, grids, run_demo
from zoo.demo.datacontext import QUICK_SPLITS
from zoo.demo.grids import make_entry

# Each test runs demo trials end to end: a minute in all on a 2-core CPU.
pytestmark = pytest.mark.slow


def _grid(epochs=1):
    return [make_entry("vqa", "rnn_text", "text", "zoo", epochs, embed_dim=4, rnn_units=(4,))]


def _run(out, data_dir, grid, **kwargs):
    return run_demo(out, grid=grid, data_dir=data_dir, splits=QUICK_SPLITS, export=False, log=None, **kwargs)


def test_a_finished_trial_is_reused_and_a_changed_one_retrained(tmp_path, demo_data_dir, monkeypatch):
    first = _run(tmp_path, demo_data_dir, _grid())
    assert first["reused_trials"] == 0

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished trial with the same settings was trained again")

    with monkeypatch.context() as patch:
        patch.setattr(experiment, "train_trial", must_not_train)
        second = _run(tmp_path, demo_data_dir, _grid())
    assert second["reused_trials"] == 1
    assert second["rows"][0]["accuracy"] == first["rows"][0]["accuracy"]
    assert second["trials"][0]["train_seconds"] == first["trials"][0]["train_seconds"]

    trained = []
    original = experiment.train_trial

    def counting(*args, **kwargs):
        trained.append(args[0].entry.epochs)
        return original(*args, **kwargs)

    monkeypatch.setattr(experiment, "train_trial", counting)
    changed = _run(tmp_path, demo_data_dir, _grid(epochs=2))
    assert trained == [2] and changed["reused_trials"] == 0
    _run(tmp_path, demo_data_dir, _grid(epochs=2), reuse=False)
    assert trained == [2, 2], "reuse=False retrains"


def test_a_trial_of_another_dataset_version_is_not_reused(tmp_path, demo_data_dir, monkeypatch):
    import tensorflow_datasets as tfds
    from zoo.datasets.mnist_text.mnist_text_dataset_builder import Builder

    from zoo.demo import runner

    _run(tmp_path, demo_data_dir, _grid())
    trial = grids.plan(_grid())[0]
    settings = runner.trial_settings(trial, QUICK_SPLITS, None)
    assert runner._finished_record(str(tmp_path), trial, settings) is not None
    # A rule change bumps the version; rows trained on the old data must not come back.
    monkeypatch.setattr(Builder, "VERSION", tfds.core.Version("1.0.1"))
    bumped = runner.trial_settings(trial, QUICK_SPLITS, None)
    assert bumped["dataset"] == "mnist_text/vqa:1.0.1"
    assert runner._finished_record(str(tmp_path), trial, bumped) is None


@pytest.mark.parametrize("damage", ["record", "model"])
def test_a_trial_without_its_record_or_model_is_retrained(tmp_path, demo_data_dir, monkeypatch, damage):
    first = _run(tmp_path, demo_data_dir, _grid())
    run_dir = tmp_path / first["trials"][0]["run_dir"]
    (run_dir / ("demo_trial.json" if damage == "record" else "model.keras")).unlink()
    calls = []
    original = experiment.train_trial
    monkeypatch.setattr(experiment, "train_trial", lambda *a, **k: calls.append(1) or original(*a, **k))
    assert _run(tmp_path, demo_data_dir, _grid())["reused_trials"] == 0
    assert calls == [1]
