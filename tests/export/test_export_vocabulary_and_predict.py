"""An export carries its vocabulary's hash and `zoo.export.predict` answers from it.

Edited, duplicated or mismatched vocabularies are refused; predict gives a flat
named answer and checks its inputs before the export runs. One tiny SavedModel
serves the whole module.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, VOCABULARY, images, reference

import zoo
from zoo.data.text import save_vocabulary, vocabulary_sha256
from zoo.export import (
    MAX_TEXT_BYTES,
    TextTooLongError,
    VocabularyError,
    VocabularyMismatchError,
    check_export_vocabulary,
    image_polarity_warning,
    predict,
    read_image,
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


def test_answer_is_flat_and_matches_the_model(saved_model_dir, tiny_model, tmp_path):
    image = images(1, seed=3)
    png = tmp_path / "digit.png"
    png.write_bytes(tf.io.encode_png(image[0]).numpy())
    result = predict(saved_model_dir, image=png, text="Is it even?")
    expected = reference(tiny_model, image, np.array([b"Is it even?"], dtype=object))[0]
    assert set(result) == {"answer", "index", "probabilities"}
    assert result["index"] == int(expected.argmax())
    assert result["answer"] == CLASS_NAMES[result["index"]]
    assert list(result["probabilities"]) == [CLASS_NAMES[i] for i in np.argsort(-expected, kind="stable")]
    assert result["probabilities"][result["answer"]] == pytest.approx(float(expected.max()), abs=1e-5)
    assert predict(saved_model_dir, image=image[0], text=b"Is it even?") == result  # arrays and bytes too


def test_text_over_the_cap_is_refused_before_the_graph_runs(saved_model_dir, monkeypatch):
    def no_graph(*args, **kwargs):
        raise AssertionError("the export was run")

    monkeypatch.setattr(tf.saved_model, "load", no_graph)
    text = "é" * (MAX_TEXT_BYTES // 2 + 1)
    with pytest.raises(TextTooLongError, match=f"The text is {MAX_TEXT_BYTES + 2} bytes; this export accepts at most {MAX_TEXT_BYTES} bytes"):
        predict(saved_model_dir, image=images(1)[0], text=text)


def test_missing_or_extra_inputs_and_wrong_arrays_are_refused(saved_model_dir):
    with pytest.raises(ValueError, match="reads text; none was given"):
        predict(saved_model_dir, image=images(1)[0])
    with pytest.raises(ValueError, match=r"image: expected uint8 pixels of shape 12x12x1 .*float64 \[1, 12, 12, 1\]"):
        predict(saved_model_dir, image=images(1).astype(float), text="x")


def test_tampered_export_vocabulary_is_refused(saved_model_dir, tmp_path):
    copy = tmp_path / "sm"
    shutil.copytree(saved_model_dir, copy)
    metadata = json.loads((copy / "zoo_export.json").read_text())
    metadata["vocabulary_size"] += 1
    (copy / "zoo_export.json").write_text(json.dumps(metadata))
    with pytest.raises(VocabularyMismatchError, match="16 tokens where the model was trained with 17"):
        predict(copy, image=images(1)[0], text="is it even")


@pytest.mark.parametrize("ground, warns", [(0, False), (255, True)], ids=["mnist-like", "inverted"])
def test_polarity_warning(ground, warns):
    digit = np.full((28, 28, 1), ground, np.uint8)
    digit[8:20, 12:16] = 255 - ground
    warning = image_polarity_warning(digit)
    assert (warning is not None) == warns
    if warns:
        assert "light digit on a dark background" in warning and "\n" not in warning
    assert (image_polarity_warning(digit.astype(np.float32) / 255.0) is not None) == warns


def test_read_image_refuses_non_images_with_one_line(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError) as caught:
        read_image(tmp_path / "x.png", (12, 12, 1))
    assert str(caught.value) == f"{str(tmp_path / 'x.png')!r} is not a PNG, JPEG, GIF or BMP image."
