"""SavedModel export: raw inputs, in-graph checks with documented outcomes, parity, atomic overwrite."""

import errno
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES, VOCABULARY, build_tiny, images, reference, texts

import zoo
from zoo.export import MAX_TEXT_BYTES, read_metadata
from zoo.export.model_call import SPLIT_MIN_BATCH

InvalidArgument = tf.errors.InvalidArgumentError


def _call(serving, signature="serving_default", **inputs):
    return {k: v.numpy() for k, v in serving.signatures[signature](**inputs).items()}


# 1 and 5 run the whole model under XLA; SPLIT_MIN_BATCH + 3 runs it in parts
# (image tower outside XLA, zoo.export.tower_split).
@pytest.mark.parametrize("batch", [1, 5, SPLIT_MIN_BATCH + 3])
def test_matches_in_memory_model(serving, tiny_model, batch):
    image, text = images(batch, seed=batch), texts(batch)
    out = _call(serving, image=tf.constant(image), text=tf.constant(list(text)))
    expected = reference(tiny_model, image, text)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(out["label"], expected.argmax(-1))
    assert out["label"].dtype == np.int64
    assert [n.decode() for n in out["class_name"]] == [CLASS_NAMES[i] for i in out["label"]]


@pytest.mark.parametrize("batch", [3, SPLIT_MIN_BATCH])
def test_float_signature_matches(serving, tiny_model, batch):
    image, text = images(batch), texts(batch)
    out = _call(serving, "serving_float", image=tf.constant(image / np.float32(255.0)), text=tf.constant(list(text)))
    np.testing.assert_allclose(out["probabilities"], reference(tiny_model, image, text), atol=1e-5)


def test_signature_and_metadata(saved_model_dir, serving):
    signature = serving.signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert {k: v.dtype for k, v in inputs.items()} == {"image": tf.uint8, "text": tf.string}
    assert set(signature.structured_outputs) == {"probabilities", "label", "class_name"}
    metadata = read_metadata(saved_model_dir)
    assert metadata["format"] == "tf_saved_model"
    assert metadata["image_shape"] == [12, 12, 1]
    assert metadata["max_length"] == 6
    assert metadata["max_text_bytes"] == MAX_TEXT_BYTES
    assert metadata["heads"]["probabilities"]["class_names"] == CLASS_NAMES
    assert metadata["signatures"] == ["serving_default", "serving_float"]


# Each bad input and the message its InvalidArgumentError must carry.
BAD_INPUTS = {
    "wrong-image-size": (dict(image=np.zeros((2, 16, 16, 1), np.uint8), text=[b"a", b"b"]),
                         r"image: expected a tensor of shape \[batch, 12, 12, 1\]; got shape\] \[2 16 16 1\]"),
    "wrong-channels": (dict(image=np.zeros((1, 12, 12, 3), np.uint8), text=[b"a"]), r"image: expected .*\[1 12 12 3\]"),
    "image-rank-3": (dict(image=np.zeros((2, 12, 12), np.uint8), text=[b"a", b"b"]), r"image: expected .*\[2 12 12\]"),
    "image-rank-0": (dict(image=np.uint8(3), text=[b"a"]), r"image: expected a tensor of shape"),
    "batch-mismatch": (dict(image=np.zeros((2, 12, 12, 1), np.uint8), text=[b"a"]),
                       r"image/text: batch sizes differ: image has\] \[2\] \[examples, text has\] \[1\]"),
    "text-rank-2": (dict(image=np.zeros((1, 12, 12, 1), np.uint8), text=[[b"a"]]), r"text: expected a rank-1 string tensor"),
    "text-scalar": (dict(image=np.zeros((1, 12, 12, 1), np.uint8), text=b"a"), r"text: expected a rank-1 string tensor"),
    "text-1MB": (dict(image=np.zeros((1, 12, 12, 1), np.uint8), text=[b"a" * (1 << 20)]),
                 rf"text: each string must be at most {MAX_TEXT_BYTES} bytes; got one of\] \[1048576\]"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_invalid_argument_naming_input(serving, case):
    inputs, message = BAD_INPUTS[case]
    inputs = {"image": tf.constant(inputs["image"]), "text": tf.constant(inputs["text"], tf.string)}
    with pytest.raises(InvalidArgument, match=message):
        serving.signatures["serving_default"](**inputs)


def test_text_byte_cap_boundary(serving):
    image = tf.constant(images(2))
    ok = _call(serving, image=image, text=tf.constant([b"a" * MAX_TEXT_BYTES, b"b"]))
    assert np.isfinite(ok["probabilities"]).all()
    with pytest.raises(InvalidArgument, match="text: each string"):
        serving.signatures["serving_default"](image=image, text=tf.constant([b"a" * (MAX_TEXT_BYTES + 1), b"b"]))


def test_wrong_dtype_is_rejected_before_the_graph(serving):
    # The signature fixes dtypes; TensorFlow refuses a float image or int text itself.
    with pytest.raises((InvalidArgument, TypeError, ValueError), match="uint8|dtype"):
        serving.signatures["serving_default"](image=tf.zeros((1, 12, 12, 1), tf.float32), text=tf.constant([b"a"]))
    with pytest.raises((InvalidArgument, TypeError, ValueError), match="string|dtype"):
        serving.signatures["serving_default"](image=tf.zeros((1, 12, 12, 1), tf.uint8), text=tf.constant([1]))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_float_signature_rejects_non_finite(serving, value):
    image = np.zeros((2, 12, 12, 1), np.float32)
    image[1, 3, 4, 0] = value
    with pytest.raises(InvalidArgument, match=r"image: expected finite values.*\[\[1 3 4 0\]\]"):
        serving.signatures["serving_float"](image=tf.constant(image), text=tf.constant([b"a", b"b"]))


def test_batch_zero_gives_empty_outputs(serving):
    out = _call(serving, image=tf.zeros((0, 12, 12, 1), tf.uint8), text=tf.constant([], tf.string))
    assert out["probabilities"].shape == (0, 3)
    assert out["label"].shape == (0,)
    assert out["class_name"].shape == (0,)


def test_empty_invalid_utf8_and_unknown_words_are_finite_and_documented(serving, tiny_model):
    image = np.repeat(images(1), 4, axis=0)
    text = [b"", b"\xff\xfe\xfd", b"zzz qqq", b"is it even?"]
    out = _call(serving, image=tf.constant(image), text=tf.constant(text))
    assert np.isfinite(out["probabilities"]).all()
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    # Documented: an empty string is all padding; invalid UTF-8 and unknown words are [UNK] (id 1).
    ids = {
        "pad": np.zeros((1, 6), np.int32),
        "unk1": np.array([[1, 0, 0, 0, 0, 0]], np.int32),
        "unk2": np.array([[1, 1, 0, 0, 0, 0]], np.int32),
    }
    scaled = tf.constant(image[:1] / np.float32(255.0))
    for row, key in [(0, "pad"), (1, "unk1"), (2, "unk2")]:
        expected = tiny_model({"image": scaled, "token_ids": tf.constant(ids[key])}, training=False)
        np.testing.assert_allclose(out["probabilities"][row], np.asarray(expected)[0], atol=1e-5)


@pytest.mark.slow
def test_unimodal_models_take_only_their_input(tmp_path):
    image_model = build_tiny("cnn_image")
    text_model = build_tiny("rnn_text")
    zoo.export_model(image_model, tmp_path / "image")
    zoo.export_model(text_model, tmp_path / "text", vocabulary=VOCABULARY)
    image_sig = tf.saved_model.load(str(tmp_path / "image")).signatures["serving_default"]
    text_loaded = tf.saved_model.load(str(tmp_path / "text"))
    assert set(image_sig.structured_input_signature[1]) == {"image"}
    assert set(text_loaded.signatures["serving_default"].structured_input_signature[1]) == {"text"}
    assert "serving_float" not in text_loaded.signatures
    image = images(2)
    np.testing.assert_allclose(image_sig(image=tf.constant(image))["probabilities"], reference(image_model, image=image), atol=1e-5)
    text = texts(3)
    got = text_loaded.signatures["serving_default"](text=tf.constant(list(text)))["probabilities"]
    np.testing.assert_allclose(got, reference(text_model, text=text), atol=1e-5)


@pytest.mark.slow
def test_multitask_heads_are_named(tmp_path):
    model = build_tiny("cnn_lstm_multitask")
    zoo.export_model(model, tmp_path / "mt", vocabulary=VOCABULARY,
               class_names={"digit": [str(i) for i in range(10)], "parity": ["even", "odd"]})
    signature = tf.saved_model.load(str(tmp_path / "mt")).signatures["serving_default"]
    assert set(signature.structured_outputs) == {
        "probabilities", "label", "class_name", "parity_probabilities", "parity_label", "parity_class_name"
    }
    image, text = images(2), texts(2)
    out = {k: v.numpy() for k, v in signature(image=tf.constant(image), text=tf.constant(list(text))).items()}
    expected = reference(model, image, text)
    np.testing.assert_allclose(out["probabilities"], expected["digit"], atol=1e-5)
    np.testing.assert_allclose(out["parity_probabilities"], expected["parity"], atol=1e-5)
    assert [n.decode() for n in out["parity_class_name"]] == [["even", "odd"][i] for i in out["parity_label"]]


def test_export_errors_are_clear(tmp_path, tiny_model, saved_model_dir):
    with pytest.raises(ValueError, match="Unknown export format 'pb'"):
        zoo.export_model(tiny_model, tmp_path / "x", "pb")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        zoo.export_model(tiny_model, saved_model_dir, vocabulary=VOCABULARY)
    with pytest.raises(ValueError, match="pass vocabulary="):
        zoo.export_model(tiny_model, tmp_path / "x")
    with pytest.raises(ValueError, match="has 2 entries but the head has 3 classes"):
        zoo.export_model(tiny_model, tmp_path / "x", vocabulary=VOCABULARY, class_names=["a", "b"])
    with pytest.raises(ValueError, match="rejects token id 19.*embedding is smaller"):
        zoo.export_model(tiny_model, tmp_path / "x", vocabulary=VOCABULARY + ["w1", "w2", "w3", "w4"])
    with pytest.raises(ValueError, match="disagrees with the model's token_ids length 6"):
        zoo.export_model(tiny_model, tmp_path / "x", vocabulary=VOCABULARY, max_length=8)
    with pytest.raises(ValueError, match="'linear' activation, not softmax"):
        zoo.export_model(build_tiny("cnn_image", task="regression", num_classes=1), tmp_path / "x")
    audio = keras.Input((100,), name="audio")
    with pytest.raises(ValueError, match=r"Input 'audio' must be \[batch, None\].*the model has \[None, 100\]"):
        zoo.export_model(keras.Model(audio, keras.layers.Dense(2, activation="softmax")(audio)), tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_enospc_mid_export_keeps_previous_export(tmp_path, tiny_model, monkeypatch):
    path = tmp_path / "sm"
    zoo.export_model(tiny_model, path, vocabulary=VOCABULARY, class_names=CLASS_NAMES)
    before = sorted(os.listdir(path))
    image, text = images(2), texts(2)
    other = build_tiny()

    from zoo.core import jsonio

    def write_half_then_fail(file_path, text_content, overwrite=True):
        with open(file_path, "w") as f:
            f.write(text_content[: len(text_content) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(file_path))

    # zoo_export.json goes through the one JSON writer.
    monkeypatch.setattr(jsonio, "atomic_write_text", write_half_then_fail)
    with pytest.raises(OSError) as caught:
        zoo.export_model(other, path, vocabulary=VOCABULARY, class_names=CLASS_NAMES, overwrite=True)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(os.listdir(path)) == before
    assert [n for n in os.listdir(tmp_path) if n != "sm"] == []  # no temporary directory left behind
    json.loads((path / "zoo_export.json").read_text())
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = signature(image=tf.constant(image), text=tf.constant(list(text)))["probabilities"].numpy()
    np.testing.assert_allclose(got, reference(tiny_model, image, text), atol=1e-5)
    # And a successful overwrite replaces it with the new model.
    zoo.export_model(other, path, vocabulary=VOCABULARY, overwrite=True)
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = signature(image=tf.constant(image), text=tf.constant(list(text)))["probabilities"].numpy()
    np.testing.assert_allclose(got, reference(other, image, text), atol=1e-5)


def test_zoo_export_is_callable_after_package_import(tmp_path, tiny_model):
    import zoo.core.atomic  # noqa: F401  (makes `zoo.export` the package)

    assert callable(zoo.export)
    zoo.export_model(build_tiny("cnn_seed", image_shape=(12, 12, 1)), tmp_path / "seed")
    assert (tmp_path / "seed" / "saved_model.pb").exists()


def _xla_compiled_functions(export_dir) -> int:
    """How many functions of the serving graph carry XLA's must-compile mark."""
    graph = tf.saved_model.load(str(export_dir)).signatures["serving_default"].graph.as_graph_def()
    return sum(1 for function in graph.library.function if function.attr.get("_XlaMustCompile", None) is not None
               and function.attr["_XlaMustCompile"].b)


@pytest.mark.slow
def test_the_model_call_is_xla_compiled_unless_asked_not_to(tiny_model, tmp_path):
    fast = zoo.export_model(tiny_model, tmp_path / "xla", vocabulary=VOCABULARY)
    plain = zoo.export_model(tiny_model, tmp_path / "plain", vocabulary=VOCABULARY, xla=False)
    assert _xla_compiled_functions(fast) >= 1
    assert _xla_compiled_functions(plain) == 0
    image, text = tf.constant(images(3)), tf.constant(texts(3))
    outputs = [tf.saved_model.load(str(p)).signatures["serving_default"](image=image, text=text) for p in (fast, plain)]
    np.testing.assert_allclose(outputs[0]["probabilities"], outputs[1]["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(outputs[0]["label"], outputs[1]["label"])
    # Only the plain path guards the model call against an empty batch; XLA runs it.
    for path in (fast, plain):
        empty = tf.saved_model.load(str(path)).signatures["serving_default"](
            image=tf.zeros([0, 12, 12, 1], tf.uint8), text=tf.constant([], tf.string))
        assert empty["probabilities"].shape == (0, 3) and empty["label"].shape == (0,)


def _captured_weights(export_dir) -> tuple[int, int]:
    """(model variables among the captures of `serving_default`, all of its captures) after loading."""
    loaded = tf.saved_model.load(str(export_dir))
    handles = {id(v.handle) for v in loaded.variables}
    captured = loaded.signatures["serving_default"].captured_inputs
    return sum(id(c) in handles for c in captured), len(captured)


@pytest.mark.slow
def test_small_models_serve_with_their_weights_compiled_in_and_saved_once(tmp_path, monkeypatch):
    from zoo.export import model_call

    keras.utils.set_random_seed(3)
    model = zoo.build("cnn_lstm_concat_seed", vocab_size=len(VOCABULARY), max_length=6, num_classes=3)
    weight_bytes = sum(w.numpy().nbytes for w in model.weights)
    inlined = zoo.export_model(model, tmp_path / "inlined", vocabulary=VOCABULARY)
    # Nothing passed per call: no variable, and the tokenizer looks words up in constants.
    assert _captured_weights(inlined) == (0, 0)
    # Both signatures share the compiled functions: the weights are in the graph twice (the
    # whole model and its parts for large batches), the image tower's three times (it is also
    # compiled alone for one example), not that many times per signature.
    image_bytes = sum(w.numpy().nbytes for w in model.weights if w.path.startswith("image_"))
    assert image_bytes > 0
    assert os.path.getsize(os.path.join(inlined, "saved_model.pb")) < 2 * weight_bytes + image_bytes + 2**20

    monkeypatch.setattr(model_call, "INLINE_WEIGHTS_MAX_BYTES", weight_bytes - 1)
    with_variables = zoo.export_model(model, tmp_path / "variables", vocabulary=VOCABULARY)
    assert _captured_weights(with_variables)[0] == len(model.weights)
    shape = tuple(model.get_layer("image").output.shape[1:])
    for path in (inlined, with_variables):
        signatures = tf.saved_model.load(str(path)).signatures
        # One example: the towers as separate calls; 2: the whole model in one; 17: the parts.
        for batch in (1, 2, SPLIT_MIN_BATCH + 1):
            image, text = images(batch, shape=shape), tf.constant(list(texts(batch)))
            expected = reference(model, image, texts(batch))
            out = signatures["serving_default"](image=tf.constant(image), text=text)
            np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
            out = signatures["serving_float"](image=tf.constant(image / np.float32(255.0)), text=text)
            np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)


def _classifier_cases():
    from zoo.registry import get_entry

    # Audio models: test_export_audio.py; KerasHub text backbones need their preset: test_export_backbone_text.py.
    return [name for name in zoo.list_models() if "audio" not in get_entry(name).modalities
            and "text_backbone" not in get_entry(name).defaults]


@pytest.mark.slow
@pytest.mark.parametrize("name", _classifier_cases())
def test_every_classifier_serves_one_example_and_an_empty_batch(name, tmp_path):
    from zoo.export.kinds import model_kind
    from zoo.registry import get_entry

    small = dict(num_heads=2, attention_dim=8, gate_units=8, ff_dim=8, num_layers=1, widths=(4,))
    model = build_tiny(name, **{k: v for k, v in small.items() if k in get_entry(name).defaults})
    if model_kind(model) != "classifier":
        pytest.skip("dual encoders and captioners serve other signatures (test_export_run_kinds.py)")
    signature = tf.saved_model.load(str(zoo.export_model(model, tmp_path / "sm", vocabulary=VOCABULARY))).signatures[
        "serving_default"]
    _, specs = signature.structured_input_signature
    image = images(1, shape=tuple(model.get_layer("image").output.shape[1:])) if "image" in specs else None
    text = texts(1) if "text" in specs else None
    raw = {k: tf.constant(v if k == "image" else list(v)) for k, v in (("image", image), ("text", text)) if v is not None}
    expected = reference(model, image, text)
    expected = expected[next(iter(expected))] if isinstance(expected, dict) else expected
    np.testing.assert_allclose(signature(**raw)["probabilities"].numpy(), expected, atol=1e-5)
    empty = signature(**{k: v[:0] for k, v in raw.items()})
    assert empty["probabilities"].shape == (0, expected.shape[-1]) and empty["label"].shape == (0,)


def test_image_tower_outside_xla_fuses_its_first_convolution_and_pooling(tiny_model, tmp_path, monkeypatch):
    from zoo.layers import conv_pool_tf

    calls = []
    fused = conv_pool_tf.conv_pool

    def counting(*args, **kwargs):
        calls.append(kwargs["gradients"])
        return fused(*args, **kwargs)

    monkeypatch.setattr(conv_pool_tf, "conv_pool", counting)
    zoo.export(tiny_model, tmp_path / "sm", vocabulary=VOCABULARY, class_names=CLASS_NAMES)
    # Traced for the batches run in parts, forward only: a serving graph holds no backward kernel.
    assert calls and not any(calls)
    serving = tf.saved_model.load(str(tmp_path / "sm"))
    image, text = images(SPLIT_MIN_BATCH, seed=3), texts(SPLIT_MIN_BATCH)
    out = _call(serving, image=tf.constant(image), text=tf.constant(list(text)))
    np.testing.assert_allclose(out["probabilities"], reference(tiny_model, image, text), atol=1e-5)
