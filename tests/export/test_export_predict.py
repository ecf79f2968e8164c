"""`zoo.export.predict`: a flat named answer, input checks before the graph runs, a verified vocabulary."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, images, reference

from zoo.export import (
    MAX_TEXT_BYTES,
    TextTooLongError,
    VocabularyMismatchError,
    image_polarity_warning,
    predict,
    read_image,
)


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
