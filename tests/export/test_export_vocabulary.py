"""An export carries its vocabulary's hash; edited, duplicated or mismatched vocabularies are refused."""

import json
import os
import shutil

import pytest
from export_helpers import VOCABULARY

import zoo
from zoo.data.text import save_vocabulary, vocabulary_sha256
from zoo.export import (
    VocabularyError,
    VocabularyMismatchError,
    check_export_vocabulary,
    read_metadata,
)

RECORD = {"size": len(VOCABULARY), "sha256": vocabulary_sha256(VOCABULARY)}


def test_saved_model_records_and_verifies_its_vocabulary(saved_model_dir, serving):
    metadata = read_metadata(saved_model_dir)
    assert metadata["vocabulary_size"] == len(VOCABULARY)
    assert metadata["vocabulary_sha256"] == vocabulary_sha256(VOCABULARY)
    # Read back from the lookup table inside the graph, not from a file beside it.
    assert check_export_vocabulary(saved_model_dir, loaded=serving) == VOCABULARY


def test_saved_model_table_that_disagrees_with_the_record_is_refused(saved_model_dir, tmp_path):
    copy = tmp_path / "sm"
    shutil.copytree(saved_model_dir, copy)
    metadata = json.loads((copy / "zoo_export.json").read_text())
    metadata["vocabulary_sha256"] = vocabulary_sha256(VOCABULARY[:-1] + ["edited"])
    (copy / "zoo_export.json").write_text(json.dumps(metadata))
    with pytest.raises(VocabularyMismatchError, match="tokenizer table of .* content hash") as caught:
        check_export_vocabulary(copy)
    assert "\n" not in str(caught.value)


def test_edited_vocabulary_file_is_refused_at_export(tiny_model, tmp_path):
    path = tmp_path / "vocabulary.txt"
    save_vocabulary(VOCABULARY[:7] + ["renamed"] + VOCABULARY[8:], path)
    with pytest.raises(VocabularyMismatchError, match=r"vocabulary.txt' is not the vocabulary the model was trained"):
        zoo.export_model(tiny_model, tmp_path / "x", vocabulary=path, expected_vocabulary=RECORD)
    save_vocabulary(VOCABULARY[:-1], path)
    with pytest.raises(VocabularyMismatchError, match="15 tokens where the model was trained with 16"):
        zoo.export_model(tiny_model, tmp_path / "x", vocabulary=path, expected_vocabulary=RECORD)
    with pytest.raises(VocabularyMismatchError, match="first difference on line 8: 'x' where the model has 'digit'"):
        zoo.export_model(tiny_model, tmp_path / "x", vocabulary=VOCABULARY[:7] + ["x"] + VOCABULARY[8:],
                         expected_vocabulary={"tokens": VOCABULARY})
    assert not (tmp_path / "x").exists()


def test_duplicate_token_is_refused_before_tensorflow_sees_it(tiny_model, tmp_path):
    # Until it was checked, this failed deep in the export with
    # "FailedPreconditionError: HashTable has different value for same key".
    duplicated = VOCABULARY[:-1] + ["even"]
    with pytest.raises(VocabularyError, match="lists 'even' twice, on lines 5 and 16"):
        zoo.export_model(tiny_model, tmp_path / "x", vocabulary=duplicated)
    assert not os.path.exists(tmp_path / "x")
