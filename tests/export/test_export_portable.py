"""ONNX and LiteRT exports of the token-id model: parity, shipped vocabulary and tokenizing recipe."""

import re

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import TEXTS, VOCABULARY, build_tiny, images, reference, texts

import zoo
from zoo.data.text import Tokenizer
from zoo.export import read_metadata, unrolled_copy
from zoo.export.spec import all_layers
from zoo.testing import small_overrides

pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")
litert = pytest.importorskip("ai_edge_litert.interpreter")


@pytest.fixture(scope="module")
def unrolled_model():
    import keras

    keras.utils.set_random_seed(2)
    return build_tiny(unroll=True)


@pytest.fixture(scope="module")
def portable_dirs(unrolled_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("portable")
    return {
        fmt: zoo.export_model(unrolled_model, root / fmt, fmt, vocabulary=VOCABULARY, class_names=["a", "b", "c"])
        for fmt in ("onnx", "litert")
    }


def _token_ids(text):
    return Tokenizer(VOCABULARY, 6)(tf.constant(list(text), tf.string)).numpy()


def _run(fmt, directory, image, token_ids):
    if fmt == "onnx":
        session = ort.InferenceSession(f"{directory}/model.onnx", providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, {"image": image, "token_ids": token_ids}), strict=True))
    runner = litert.Interpreter(model_path=f"{directory}/model.tflite").get_signature_runner("serving_default")
    return runner(image=image, token_ids=token_ids)


@pytest.mark.parametrize("fmt, tolerance", [("onnx", 1e-4), ("litert", 1e-3)])
def test_parity_with_keras_at_two_batch_sizes(portable_dirs, unrolled_model, fmt, tolerance):
    for batch in (1, 4):
        image, text = images(batch, seed=batch), texts(batch)
        out = _run(fmt, portable_dirs[fmt], image, _token_ids(text))
        expected = reference(unrolled_model, image, text)
        assert np.abs(out["probabilities"] - expected).max() <= tolerance
        np.testing.assert_array_equal(out["label"], expected.argmax(-1))


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_ships_vocabulary_tokenize_doc_and_metadata(portable_dirs, fmt):
    directory = portable_dirs[fmt]
    with open(f"{directory}/vocabulary.txt", encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == VOCABULARY
    metadata = read_metadata(directory)
    assert metadata["format"] == fmt
    assert metadata["inputs"]["token_ids"] == {"dtype": "int32", "shape": [None, 6]}
    assert metadata["inputs"]["image"]["dtype"] == "uint8"
    assert metadata["heads"]["probabilities"]["class_names"] == ["a", "b", "c"]
    doc = open(f"{directory}/TOKENIZE.md", encoding="utf-8").read()
    assert "shape [batch, 6]" in doc and "vocabulary.txt" in doc


def test_tokenize_doc_reference_code_matches_the_tokenizer(portable_dirs, monkeypatch):
    doc = open(f"{portable_dirs['onnx']}/TOKENIZE.md", encoding="utf-8").read()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    namespace = {}
    exec(compile(code, "TOKENIZE.md", "exec"), namespace)
    monkeypatch.chdir(portable_dirs["onnx"])
    vocabulary = namespace["load_vocabulary"]()
    samples = list(TEXTS) + [
        "Is it EVEN?!", "  the   digit\tis\none ", "what's this: a 'two'?", "zero-one+two", "ÉVEN éven",
        "is it even is it even is it even", "\u00a0is\u3000it", "big" * 3, "",
    ]
    got = namespace["tokenize"](samples, vocabulary)
    expected = Tokenizer(VOCABULARY, 6)(tf.constant([s.encode() if isinstance(s, str) else s for s in samples])).numpy()
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("overrides", [{}, {"bidirectional": True}, {"rnn_cell": "gru"}],
                         ids=["lstm", "bidirectional", "gru"])
def test_recurrent_models_built_without_unroll_export_to_litert_with_parity(overrides, tmp_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    model = build_tiny("rnn_text", **overrides)
    assert not any(layer.unroll for layer in all_layers(model) if hasattr(layer, "unroll"))
    path = zoo.export_model(model, tmp_path / "lite", "litert", vocabulary=VOCABULARY)
    token_ids = _token_ids(texts(5))
    token_ids[1, 1] = 0  # a gap inside a text
    runner = litert.Interpreter(model_path=f"{path}/model.tflite").get_signature_runner("serving_default")
    expected = np.asarray(model({"token_ids": token_ids}, training=False))
    np.testing.assert_allclose(runner(token_ids=token_ids)["probabilities"], expected, atol=1e-5)


def test_unrolled_copy_has_same_outputs(tiny_model):
    copy = unrolled_copy(tiny_model)
    assert all(layer.unroll for layer in copy.layers if hasattr(layer, "unroll"))
    image, text = images(3), texts(3)
    np.testing.assert_allclose(reference(copy, image, text), reference(tiny_model, image, text), atol=1e-6)


def test_onnx_export_after_a_saved_model_export_prints_no_tensorflow_warning(tiny_model, tmp_path, capfd, caplog):
    # The SavedModel's lookup table leaves an initializer in TensorFlow's graph
    # collections, which the conversion then failed to serialize, loudly.
    zoo.export_model(tiny_model, tmp_path / "sm", vocabulary=VOCABULARY)
    capfd.readouterr()
    caplog.clear()
    zoo.export_model(tiny_model, tmp_path / "onnx", "onnx", vocabulary=VOCABULARY)
    printed = capfd.readouterr().err + caplog.text
    assert "Issue encountered when serializing" not in printed


def test_invalid_onnx_graph_fails_at_export_time():
    import onnx
    from onnx import TensorProto, helper

    from zoo.export.onnx import _check_onnx

    node = helper.make_node("Erfc", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match="ONNX conversion produced an invalid model"):
        _check_onnx(model)
    assert onnx.__version__


def _catalog_cases():
    names = zoo.list_models()
    return [(name, fmt) for name in names for fmt in ("onnx", "litert")]


@pytest.mark.slow
@pytest.mark.parametrize("name, fmt", _catalog_cases())
def test_every_registered_model_converts_with_parity(name, fmt, tmp_path):
    from zoo.registry import get_entry

    overrides = {"unroll": True} if fmt == "litert" and "unroll" in get_entry(name).defaults else {}
    overrides.update({k: v for k, v in dict(num_heads=2, attention_dim=8, gate_units=8, ff_dim=8, num_layers=1,
                                            widths=(4,)).items() if k in get_entry(name).defaults})
    if "text_backbone" in get_entry(name).defaults:
        # A KerasHub text backbone's tokenizer has no ONNX or LiteRT ops: refused before any conversion
        # (its SavedModel export: tests/export/test_export_backbone_text.py).
        model = zoo.build(name, **small_overrides(name))
        with pytest.raises(ValueError, match=f"format='{fmt}': a model on a KerasHub text backbone"):
            zoo.export_model(model, tmp_path / fmt, fmt, vocabulary=VOCABULARY)
        return
    model = build_tiny(name, **overrides)
    if "audio" in get_entry(name).modalities:
        # Audio models export as SavedModels (tests/export/test_export_audio.py); their STFT front end is
        # refused by the portable formats before any conversion, with a message naming the way that works.
        with pytest.raises(ValueError, match=f"Cannot export a model that reads audio as '{fmt}'.*tf_saved_model"):
            zoo.export_model(model, tmp_path / fmt, fmt, vocabulary=VOCABULARY)
        return
    from zoo.export.kinds import model_kind

    kind = model_kind(model)
    if kind != "classifier":
        # A dual encoder's embeddings and a captioner's per-step vocabulary are
        # no class probabilities: refused before any conversion, naming the
        # SavedModel signatures that serve them (tests/export/test_export_run_kinds.py).
        with pytest.raises(ValueError, match=f"format='{fmt}': a {kind.replace('_', ' ')} exports as 'tf_saved_model' only"):
            zoo.export_model(model, tmp_path / fmt, fmt, vocabulary=VOCABULARY)
        return
    zoo.export_model(model, tmp_path / fmt, fmt, vocabulary=VOCABULARY)
    metadata = read_metadata(tmp_path / fmt)
    image = images(3) if metadata["image_shape"] else None
    text = texts(3) if metadata["max_length"] else None
    feeds = {}
    if image is not None:
        feeds["image"] = image
    if text is not None:
        feeds["token_ids"] = _token_ids(text)
    if fmt == "onnx":
        session = ort.InferenceSession(f"{tmp_path / fmt}/model.onnx", providers=["CPUExecutionProvider"])
        out = session.run(["probabilities"], feeds)[0]
    else:
        runner = litert.Interpreter(model_path=f"{tmp_path / fmt}/model.tflite").get_signature_runner("serving_default")
        out = runner(**feeds)["probabilities"]
    expected = reference(model, image, text)
    expected = expected[next(iter(expected))] if isinstance(expected, dict) else expected
    assert np.abs(out - expected).max() <= (1e-4 if fmt == "onnx" else 1e-3)


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_shipped_vocabulary_is_verified_against_the_recorded_hash(portable_dirs, unrolled_model, fmt, tmp_path):
    import shutil

    from zoo.data.text import vocabulary_sha256
    from zoo.export import VocabularyMismatchError, check_export_vocabulary, predict

    assert read_metadata(portable_dirs[fmt])["vocabulary_sha256"] == vocabulary_sha256(VOCABULARY)
    assert check_export_vocabulary(portable_dirs[fmt]) == VOCABULARY
    image = images(1, seed=4)
    result = predict(portable_dirs[fmt], image=image[0], text="what digit is this")
    expected = reference(unrolled_model, image, np.array([b"what digit is this"], dtype=object))[0]
    assert result["index"] == int(expected.argmax()) and result["answer"] == ["a", "b", "c"][result["index"]]
    copy = tmp_path / fmt
    shutil.copytree(portable_dirs[fmt], copy)
    path = copy / "vocabulary.txt"
    path.write_text(path.read_text().replace("\neven\n", "\nodd2\n"))
    with pytest.raises(VocabularyMismatchError, match=r"vocabulary.txt' is not the vocabulary .* content hash"):
        check_export_vocabulary(copy)
    with pytest.raises(VocabularyMismatchError):
        predict(copy, image=image[0], text="what digit is this")
