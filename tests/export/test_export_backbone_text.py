"""SavedModel export of a model on KerasHub towers: raw image + raw text in, tokenized in the graph."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.data.hub_text import BackboneTokenizer, word_tokenizer
from zoo.models.pretrained import save_tower_presets

# Exports a KerasHub-backbone model and serves it in a fresh process: about 30 s on a 2-core CPU.
pytestmark = pytest.mark.slow

WORDS = ["is", "it", "even", "odd", "the", "digit", "seven", "?"]
TEXT = {"vocabulary_size": len(WORDS) + 5, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32,
        "max_sequence_length": 16}
TEXTS = ["is it even?", "the digit is seven", "", "unknown words only"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub_export")
    model = zoo.build("bert_resnet_xattn_tiny", text_config=TEXT, max_length=10, head_units=8, num_heads=2,
                      attention_dim=8, num_classes=3)
    save_tower_presets(model, root / "presets", tokenizer=word_tokenizer(WORDS))
    path = zoo.export_model(model, root / "export", text_preset=root / "presets" / "text",
                            class_names=["no", "yes", "maybe"])
    return model, root, path


def test_served_from_raw_image_and_text_in_a_fresh_process_equals_keras_and_takes_batch_zero(exported):
    model, root, path = exported
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    np.save(root / "images.npy", images)
    code = f"""
        import json, numpy as np, tensorflow as tf
        import tensorflow_text  # registers the tokenizer's ops, as the README says
        served = tf.saved_model.load({str(path)!r}).signatures["serving_default"]
        out = served(image=tf.constant(np.load({str(root / "images.npy")!r})), text=tf.constant({TEXTS!r}))
        empty = served(image=tf.zeros([0, 28, 28, 1], tf.uint8), text=tf.constant([], tf.string))
        assert empty["probabilities"].shape == (0, 3) and empty["class_name"].shape == (0,), empty
        print(json.dumps({{k: v.numpy().tolist() for k, v in out.items() if k != "class_name"}}))
        """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    tokenizer = BackboneTokenizer(root / "presets" / "text", max_length=10)
    feeds = {k: v.numpy() for k, v in tokenizer(tf.constant(TEXTS)).items()}
    expected = np.asarray(model({"image": images.astype("float32") / 255.0, **feeds}, training=False))
    np.testing.assert_allclose(np.asarray(served["probabilities"]), expected, atol=1e-5)
    assert served["label"] == expected.argmax(-1).tolist()


def test_backbone_text_models_need_their_preset_and_the_saved_model_format(exported, tmp_path):
    model, root, _ = exported
    with pytest.raises(ValueError, match="pass text_preset=DIR"):
        zoo.export_model(model, tmp_path / "a")
    with pytest.raises(ValueError, match="format='onnx': a model on a KerasHub text backbone"):
        zoo.export_model(model, tmp_path / "b", "onnx", text_preset=root / "presets" / "text")
