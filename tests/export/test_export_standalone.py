"""The SavedModel runs with TensorFlow alone: a fresh process without Keras or the zoo, and saved_model_cli."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from export_helpers import CLASS_NAMES, images, reference, texts

FORBIDDEN = ("keras", "tf_keras", "zoo")

# Runs in a fresh interpreter whose path starts with stand-in packages for
# keras and zoo that raise on import, so any real use of them fails loudly
# (TensorFlow only probes for keras with find_spec, which is allowed).
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    export_dir, inputs_path, outputs_path = sys.argv[1:4]
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    data = np.load(inputs_path)
    results = {}
    for batch in (2, 7):
        out = signature(image=tf.constant(data["image"][:batch]), text=tf.constant(data["text"][:batch]))
        for key, value in out.items():
            value = value.numpy()
            results[f"{key}_{batch}"] = value.astype("S") if value.dtype == object else value
    try:
        signature(image=tf.zeros([1, 5, 5, 1], tf.uint8), text=tf.constant([b"x"]))
        results["check"] = np.array(b"no error")
    except tf.errors.InvalidArgumentError as error:
        results["check"] = np.array(str(error).encode())
    forbidden = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tf_keras", "zoo"))
    results["forbidden_modules"] = np.array(",".join(forbidden).encode())
    np.savez(outputs_path, **results)
    """
)


def _clean_env(blockers=None):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if blockers is not None:
        env["PYTHONPATH"] = str(blockers)
    return env


def _blockers(root):
    for name in FORBIDDEN:
        package = root / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('the SavedModel must not need {name}')\n")
    return root


@pytest.mark.slow
def test_fresh_process_with_only_tensorflow_matches(saved_model_dir, tiny_model, tmp_path):
    image, text = images(7, seed=3), texts(7)
    np.savez(tmp_path / "in.npz", image=image, text=text.astype("S"))
    (tmp_path / "child.py").write_text(CHILD)
    subprocess.run(
        [sys.executable, str(tmp_path / "child.py"), str(saved_model_dir), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
        cwd=tmp_path, env=_clean_env(_blockers(tmp_path / "blockers")), check=True, timeout=300,
    )
    out = np.load(tmp_path / "out.npz")
    assert out["forbidden_modules"].item() == b""
    for batch in (2, 7):
        expected = reference(tiny_model, image[:batch], text[:batch])
        assert np.abs(out[f"probabilities_{batch}"] - expected).max() <= 1e-5
        np.testing.assert_array_equal(out[f"label_{batch}"], expected.argmax(-1))
        assert [n.decode() for n in out[f"class_name_{batch}"]] == [CLASS_NAMES[i] for i in expected.argmax(-1)]
    assert b"image: expected a tensor of shape [batch, 12, 12, 1]" in out["check"].item()


def _saved_model_cli():
    path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(path):
        path = shutil.which("saved_model_cli")
    if path is None:
        pytest.skip("saved_model_cli is not installed beside this Python")
    return path


@pytest.mark.slow
def test_saved_model_cli_show_and_run(saved_model_dir, tiny_model, tmp_path):
    cli = _saved_model_cli()
    shown = subprocess.run([cli, "show", "--dir", str(saved_model_dir), "--all"], env=_clean_env(),
                           capture_output=True, text=True, check=True, timeout=300).stdout
    assert "signature_def['serving_default']" in shown
    assert "inputs['image']" in shown and "DT_UINT8" in shown
    assert "inputs['text']" in shown and "DT_STRING" in shown
    assert "outputs['probabilities']" in shown and "outputs['class_name']" in shown

    image, text = images(3, seed=5), texts(3)
    np.savez(tmp_path / "in.npz", image=image, text=text.astype("S"))
    subprocess.run(
        [cli, "run", "--dir", str(saved_model_dir), "--tag_set", "serve", "--signature_def", "serving_default",
         "--inputs", f"image={tmp_path / 'in.npz'}[image];text={tmp_path / 'in.npz'}[text]",
         "--outdir", str(tmp_path / "out")],
        env=_clean_env(), capture_output=True, text=True, check=True, timeout=300,
    )
    expected = reference(tiny_model, image, text)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "probabilities.npy"), expected, atol=1e-5)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "label.npy"), expected.argmax(-1))
