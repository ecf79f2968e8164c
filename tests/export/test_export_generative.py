"""SavedModels of the captioner (`generate`) and the dual encoder (`embed_image`, `embed_text`, zero-shot),
loaded by TensorFlow alone, against the Python models; bad inputs are refused in the graph."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.data import Tokenizer
from zoo.export.captioner import export_captioner
from zoo.export.dual_encoder import export_dual_encoder

VOCABULARY = ["", "[UNK]", "a", "thick", "thin", "seven", "one", "left", "right"]


def _images(count, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28, 1)).astype("uint8")


@pytest.fixture(scope="module")
def captioner_export(tmp_path_factory):
    keras.utils.set_random_seed(5)
    model = zoo.build("cnn_lstm_captioner", vocab_size=len(VOCABULARY), max_length=6, embed_dim=8, rnn_units=(8,),
                      attention_dim=8, num_heads=2, conv_filters=(4, 8), image_units=8)
    path = export_captioner(model, tmp_path_factory.mktemp("cap") / "export", vocabulary=VOCABULARY)
    return model, path, tf.saved_model.load(path)


@pytest.mark.parametrize("width", [1, 3])
def test_generate_returns_the_python_decoders_captions(captioner_export, width):
    model, _, loaded = captioner_export
    images = _images(5, seed=width)
    expected = zoo.models.generate_captions(model, images.astype("float32") / 255.0, VOCABULARY, beam_width=width)
    out = loaded.signatures["generate"](image=tf.constant(images), beam_width=tf.constant(width))
    assert [c.decode() for c in out["caption"].numpy()] == expected


@pytest.mark.slow
def test_generate_without_xla_returns_the_python_decoders_captions(captioner_export, tmp_path):
    model = captioner_export[0]
    loaded = tf.saved_model.load(export_captioner(model, tmp_path / "plain", vocabulary=VOCABULARY, xla=False))
    images = _images(4, seed=7)
    for width in (1, 2):
        expected = zoo.models.generate_captions(model, images.astype("float32") / 255.0, VOCABULARY, beam_width=width)
        out = loaded.signatures["generate"](image=tf.constant(images), beam_width=tf.constant(width))
        assert [c.decode() for c in out["caption"].numpy()] == expected


@pytest.mark.slow
def test_lstm_captioners_step_their_state_and_others_reread_the_prefix(captioner_export, tmp_path):
    from zoo.export.caption_steps import decoding_parts

    # The captioner's LSTM advances one token per step: its state is (h, c) per layer.
    assert len(decoding_parts(captioner_export[0]).start(3)) == 2
    keras.utils.set_random_seed(6)
    gru = zoo.build("cnn_lstm_captioner", vocab_size=len(VOCABULARY), max_length=6, embed_dim=8, rnn_units=(8,),
                    rnn_cell="gru", attention_dim=8, num_heads=2, conv_filters=(4, 8), image_units=8)
    assert decoding_parts(gru).start(3) == []  # no stepped cell: each step reruns the text tower
    loaded = tf.saved_model.load(export_captioner(gru, tmp_path / "gru", vocabulary=VOCABULARY))
    images = _images(4, seed=11)
    expected = zoo.models.generate_captions(gru, images.astype("float32") / 255.0, VOCABULARY, beam_width=2)
    out = loaded.signatures["generate"](image=tf.constant(images), beam_width=tf.constant(2))
    assert [c.decode() for c in out["caption"].numpy()] == expected


def test_stepped_decoding_gives_the_models_probabilities_at_each_position(captioner_export):
    from zoo.export.caption_steps import decoding_parts
    from zoo.export.captioner import _beam_rows

    model = captioner_export[0]
    length, vocab = model.input["token_ids"].shape[1], model.output.shape[-1]
    parts = decoding_parts(model)
    images = tf.constant(_images(4, seed=2).astype("float32") / 255.0)
    ids = np.random.default_rng(0).integers(1, vocab, size=(4, length)).astype("int32")
    ids[:, 0] = vocab  # the start id, then words
    encoded, state = parts.encode(images), parts.start(4)
    # After position 2 the rows swap as beams do: one image, four beams, reordered.
    order = np.array([2, 0, 3, 1])
    for position in range(length):
        if position == 3:
            state = [_beam_rows(tensor, tf.constant(order[None])) for tensor in state]
            ids, encoded = ids[order], [tf.gather(tensor, order) for tensor in encoded]
            images = tf.gather(images, order)
        # The head's shape check admits one position only in a graph, where decoding runs.
        probabilities, state = tf.function(parts.step)(encoded, state, tf.constant(ids), position)
        whole = np.asarray(model({"image": images, "token_ids": tf.constant(ids)}, training=False))[:, position]
        np.testing.assert_allclose(probabilities, whole, atol=1e-6)


def _model_variables_captured(loaded) -> dict[str, int]:
    """Per signature, how many of the model's variables it reads on each call."""
    handles = {id(v.handle) for v in loaded.variables}
    return {name: sum(id(c) in handles for c in signature.captured_inputs)
            for name, signature in loaded.signatures.items()}


@pytest.mark.slow
def test_compiled_exports_read_no_variable_per_call(captioner_export, dual_export):
    # Small models' weights are compiled into the XLA calls, as for classifiers.
    assert _model_variables_captured(captioner_export[2]) == {"serving_default": 0, "generate": 0}
    assert _model_variables_captured(tf.saved_model.load(dual_export[2])) == {
        "serving_default": 0, "embed_image": 0, "embed_text": 0}


@pytest.mark.parametrize("k", [1, 3, 12])
def test_top_k_by_reductions_is_top_k_with_its_tie_order(k):
    from zoo.export.caption_steps import top_k_by_reductions

    rng = np.random.default_rng(k)
    # Few distinct values, so that most rows hold ties; -inf as finished beams give.
    values = rng.integers(0, 4, size=(6, 12)).astype("float64")
    values[rng.random(values.shape) < 0.3] = -np.inf
    values[0] = -np.inf
    expected = tf.math.top_k(tf.constant(values), k=k, sorted=True)
    compiled = tf.function(top_k_by_reductions, jit_compile=True)
    for got in (top_k_by_reductions(tf.constant(values), tf.constant(k)), compiled(tf.constant(values), tf.constant(k))):
        np.testing.assert_array_equal(got[0], expected.values)
        np.testing.assert_array_equal(got[1], expected.indices)


def test_generate_refuses_bad_inputs(captioner_export):
    generate = captioner_export[2].signatures["generate"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="beam_width: expected an integer in"):
        generate(image=tf.constant(_images(1, 0)), beam_width=tf.constant(0))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image: expected a tensor of shape \[batch, 28, 28, 1\]"):
        generate(image=tf.zeros([1, 5, 5, 1], tf.uint8), beam_width=tf.constant(1))
    greedy = captioner_export[2].signatures["serving_default"](image=tf.zeros([0, 28, 28, 1], tf.uint8))
    assert greedy["caption"].shape == (0,)


@pytest.fixture(scope="module")
def dual_export(tmp_path_factory):
    model = zoo.build("cnn_lstm_dual_encoder", vocab_size=len(VOCABULARY), max_length=6, conv_filters=(4,),
                      image_units=8, embed_dim=8, rnn_units=(8,), projection_dim=6)
    prompts = {"one": ["a thin one", "a thick one"], "seven": ["a thin seven", "a seven left"]}
    path = export_dual_encoder(model, tmp_path_factory.mktemp("dual") / "export", vocabulary=VOCABULARY,
                               class_prompts=prompts)
    return model, prompts, path


@pytest.mark.slow
@pytest.mark.parametrize("xla", [True, False])
@pytest.mark.parametrize("count", [4, 17])  # 17: the image tower leaves XLA from SPLIT_MIN_BATCH rows on
def test_dual_encoder_signatures_match_the_model(dual_export, tmp_path, xla, count):
    model, prompts, path = dual_export
    if not xla:
        path = export_dual_encoder(model, tmp_path / "plain", vocabulary=VOCABULARY, class_prompts=prompts, xla=False)
    loaded = tf.saved_model.load(path)
    texts = np.array([b"a thick seven", b"one", b"", b"\xff unknown", b"a thin one left right"] * 4)[:count]
    images = _images(count, 1)
    image_emb = zoo.models.embed_images(model, images.astype("float32") / 255.0)
    tokenizer = Tokenizer(VOCABULARY, 6)
    np.testing.assert_allclose(loaded.signatures["embed_image"](image=tf.constant(images))["embedding"], image_emb,
                               atol=1e-5)
    text_emb = zoo.models.embed_texts(model, tokenizer(tf.constant(texts)).numpy())
    np.testing.assert_allclose(loaded.signatures["embed_text"](text=tf.constant(texts))["embedding"], text_emb,
                               atol=1e-5)
    classes = zoo.models.class_embeddings(model, [tokenizer(tf.constant(p)).numpy() for p in prompts.values()])
    out = loaded.signatures["serving_default"](image=tf.constant(images))
    np.testing.assert_array_equal(out["label"], zoo.models.zero_shot_classify(image_emb, classes))
    assert [n.decode() for n in out["class_name"].numpy()] == [list(prompts)[i] for i in out["label"].numpy()]
    np.testing.assert_allclose(out["probabilities"].numpy().sum(1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_dual_encoder_signatures_refuse_bad_inputs(dual_export):
    loaded = tf.saved_model.load(dual_export[2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="image: expected a tensor of shape"):
        loaded.signatures["serving_default"](image=tf.zeros([2, 28, 28, 3], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="text: each string must be at most"):
        loaded.signatures["embed_text"](text=tf.constant([b"x" * 5000]))
    with pytest.raises(ValueError, match=r"Classes \['two'\] have no prompts"):
        export_dual_encoder(dual_export[0], "/nonexistent/never", vocabulary=VOCABULARY, class_prompts={"two": []})


CHILD = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    out = loaded.signatures[sys.argv[2]](image=tf.zeros([2, 28, 28, 1], tf.uint8))
    forbidden = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "zoo"))
    print(sorted(out), forbidden)
    """
)


@pytest.mark.slow
def test_exports_load_with_tensorflow_alone(captioner_export, dual_export, tmp_path):
    blockers = tmp_path / "blockers"
    for name in ("keras", "zoo"):
        (blockers / name).mkdir(parents=True)
        (blockers / name / "__init__.py").write_text(f"raise ImportError('the SavedModel must not need {name}')\n")
    env = {"PYTHONPATH": str(blockers), "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}
    for path, signature, keys in ((captioner_export[1], "serving_default", "['caption', 'token_ids']"),
                                  (dual_export[2], "serving_default", "['class_name', 'label', 'probabilities']")):
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), signature], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip() == f"{keys} []"


@pytest.mark.slow
def test_zoo_predict_prints_the_caption(captioner_export, tmp_path, capsys):
    from zoo.cli.main import main

    model, path, _ = captioner_export
    image = _images(1, seed=9)
    png = tmp_path / "digit.png"
    png.write_bytes(tf.io.encode_png(image[0]).numpy())
    expected = zoo.models.generate_captions(model, image.astype("float32") / 255.0, VOCABULARY, beam_width=2)[0]
    assert main(["predict", str(path), "--image", str(png), "--beam-width", "2"]) == 0
    assert capsys.readouterr().out.strip() == f"caption: {expected}"
    assert main(["predict", str(path), "--image", str(png), "--text", "a seven"]) == 2
    assert "drop --text" in capsys.readouterr().err
