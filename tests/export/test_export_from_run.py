"""`export_run`: a run directory's vocabulary is verified against its config before anything is exported."""

import json
import os
import shutil

import keras
import pytest
from export_helpers import VOCABULARY, build_tiny

from zoo.core.atomic import atomic_save_model
from zoo.data.text import save_vocabulary, vocabulary_sha256
from zoo.export import (
    CorruptModelError,
    ExportWarning,
    VocabularyError,
    VocabularyMismatchError,
    export_run,
    read_metadata,
)
from zoo.training import runfiles

CLASSES = ["no", "yes", "maybe"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    keras.utils.set_random_seed(5)
    root = tmp_path_factory.mktemp("run") / "run"
    root.mkdir()
    config = {"model": "cnn_lstm_concat", "max_length": 6, "class_names": CLASSES,
              "vocabulary_size": len(VOCABULARY), "vocabulary_sha256": vocabulary_sha256(VOCABULARY)}
    # The layout zoo.train leaves: vocabulary, model, config, then the metrics.json marker.
    runfiles.write_final(str(root), model=build_tiny(), config=config, metrics={"step": 1, "epoch": 1},
                         vocabulary=VOCABULARY)
    return root


@pytest.fixture
def run(trained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def _edit_config(run, **changes):
    """Rewrites config.json and its hash in the marker, as if the run had been trained so."""
    config = json.loads((run / "config.json").read_text())
    config.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del config[key]
    (run / "config.json").write_text(json.dumps(config))
    marker = json.loads((run / "metrics.json").read_text())
    if "artifacts" in marker:
        marker["artifacts"]["config.json"] = runfiles.file_sha256(run / "config.json")
        (run / "metrics.json").write_text(json.dumps(marker))


def _make_older_zoo_run(run):
    """A run of a zoo from before vocabulary hashes and completion markers."""
    _edit_config(run, vocabulary_sha256=None)
    marker = json.loads((run / "metrics.json").read_text())
    del marker["artifacts"]
    (run / "metrics.json").write_text(json.dumps(marker))


def _write_lines(run, tokens):
    (run / "vocabulary.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")


def test_untouched_run_exports_with_its_vocabulary_hash_and_class_names(run, tmp_path):
    out = export_run(run, tmp_path / "sm")
    metadata = read_metadata(out)
    assert metadata["vocabulary_sha256"] == vocabulary_sha256(VOCABULARY)
    assert metadata["heads"]["probabilities"]["class_names"] == CLASSES


@pytest.mark.parametrize(
    "tokens, error, message",
    [
        (VOCABULARY[:9] + VOCABULARY[10:], VocabularyMismatchError, "15 tokens where the model was trained with 16"),
        (VOCABULARY[:9] + ["nine"] + VOCABULARY[10:], VocabularyMismatchError, "content hash sha256"),
        (VOCABULARY[:9] + ["even"] + VOCABULARY[10:], VocabularyError, "lists 'even' twice, on lines 5 and 10"),
    ],
    ids=["deleted-line", "renamed-token", "duplicated-token"],
)
def test_edited_vocabulary_is_refused_with_one_line(run, tmp_path, tokens, error, message):
    _write_lines(run, tokens)
    with pytest.raises(error) as caught:
        export_run(run, tmp_path / "sm")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(run / "vocabulary.txt") in str(caught.value)
    assert not (tmp_path / "sm").exists()


def test_runs_without_a_recorded_hash_check_size_and_embedding(run, tmp_path):
    _write_lines(run, VOCABULARY[:-1])
    _make_older_zoo_run(run)
    with pytest.raises(VocabularyMismatchError, match="15 tokens where the model was trained with 16"):
        export_run(run, tmp_path / "sm")
    _edit_config(run, vocabulary_size=None)
    with pytest.raises(VocabularyMismatchError, match="15 tokens where the model's embedding has 16"):
        export_run(run, tmp_path / "sm")
    _write_lines(run, VOCABULARY)
    with pytest.warns(ExportWarning, match="trained by an older zoo"):
        assert read_metadata(export_run(run, tmp_path / "sm"))["vocabulary_size"] == 16


def test_unfinished_or_changed_runs_and_a_running_training_are_refused(run, tmp_path):
    from zoo.training import RunIncomplete, RunLocked
    from zoo.training.runlock import exclusive_lock

    model = run / "model.keras"
    model.write_bytes(model.read_bytes())  # same bytes: still the run's model
    export_run(run, tmp_path / "a")
    atomic_save_model(build_tiny(), model, overwrite=True)
    with pytest.raises(RunIncomplete, match="model.keras is not the file metrics.json describes"):
        export_run(run, tmp_path / "b")
    os.remove(run / "metrics.json")
    with pytest.raises(RunIncomplete, match="is not a finished run"):
        export_run(run, tmp_path / "c")
    with exclusive_lock(str(run)), pytest.raises(RunLocked):
        export_run(run, tmp_path / "d")
    assert not any((tmp_path / name).exists() for name in "bcd")


@pytest.mark.slow
def test_class_names_that_do_not_fit_are_left_out_with_a_warning(run, tmp_path):
    _edit_config(run, class_names=["a", "b"])
    with pytest.warns(ExportWarning, match="has 2 entries but the head has 3 classes"):
        out = export_run(run, tmp_path / "sm")
    assert read_metadata(out)["heads"]["probabilities"]["class_names"] is None


def test_missing_vocabulary_and_corrupt_model_are_named(run, tmp_path):
    os.remove(run / "vocabulary.txt")
    with pytest.raises(FileNotFoundError, match="has no vocabulary.txt, but its model reads text"):
        export_run(run, tmp_path / "sm")
    save_vocabulary(VOCABULARY, run / "vocabulary.txt")
    data = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(data[: len(data) - 100])
    with pytest.raises(CorruptModelError, match="model.keras' is truncated or corrupt"):
        export_run(run, tmp_path / "sm")


def test_a_folder_that_is_no_run_is_refused_and_left_untouched(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileNotFoundError, match="has no model.keras"):
        export_run(folder, tmp_path / "sm")
    assert os.listdir(folder) == ["notes.txt"], "no lock file or anything else written into a folder that is no run"
