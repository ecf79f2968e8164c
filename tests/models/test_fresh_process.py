"""What a user meets in a new Python process: saved models open after `import zoo`,
and the catalog builds on JAX where TensorFlow cannot even be imported."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import zoo
from zoo.testing import random_inputs, small_overrides

# Each test saves the whole catalog or starts fresh processes: a minute on a 2-core CPU.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=environment, cwd=ROOT, timeout=600
    )


@pytest.fixture(scope="module")
def saved_catalog(tmp_path_factory):
    """Every registered model saved as .keras, with inputs and the outputs it gave."""
    root = tmp_path_factory.mktemp("catalog")
    expected = {}
    for name in zoo.list_models():
        model = zoo.build(name, **small_overrides(name))
        inputs = random_inputs(model, batch_size=2, seed=3)
        np.savez(root / f"{name}.npz", **inputs)
        outputs = model(inputs, training=False)
        leaves = [np.asarray(o) for o in (outputs.values() if isinstance(outputs, dict) else [outputs])]
        expected[name] = [leaf.tolist() for leaf in leaves]
        model.save(root / f"{name}.keras")
    (root / "expected.json").write_text(json.dumps(expected))
    return root


@pytest.mark.parametrize(
    "imports",
    # Keras imported first registers at `import zoo` itself, the simpler path: it runs with the slow tests.
    ["import zoo\nimport keras", "import keras\nimport zoo"],
)
def test_every_saved_model_loads_with_plain_keras_after_import_zoo(saved_catalog, imports):
    tmp_path = saved_catalog
    result = _run(
        f"""
        import json, pathlib
        import numpy as np
        {imports.replace(chr(10), chr(10) + "        ")}

        root = pathlib.Path({str(tmp_path)!r})
        expected = json.loads((root / "expected.json").read_text())
        for name, leaves in expected.items():
            model = keras.models.load_model(root / f"{{name}}.keras")
            inputs = dict(np.load(root / f"{{name}}.npz"))
            outputs = model(inputs, training=False)
            actual = [np.asarray(o) for o in (outputs.values() if isinstance(outputs, dict) else [outputs])]
            for a, e in zip(actual, leaves, strict=True):
                np.testing.assert_allclose(a, np.asarray(e), atol=1e-6, err_msg=name)
        print("loaded", len(expected))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded {len(zoo.list_models())}" in result.stdout


# 22 s on 2 cores (every model built on JAX in a fresh process): with the slow tests.
@pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import jax"], capture_output=True).returncode != 0,
    reason="JAX is not installed (it comes with the dev extras)",
)
def test_import_zoo_builds_every_model_on_jax_without_tensorflow():
    result = _run(
        """
        import sys
        # As in an environment without TensorFlow: importing it fails.
        for blocked in ("tensorflow", "tensorflow_datasets", "tensorflow_text"):
            sys.modules[blocked] = None
        import keras
        import zoo

        assert keras.backend.backend() == "jax", keras.backend.backend()
        for name in zoo.list_models():
            model = zoo.build(name)
            card = zoo.describe(name)
            assert card["parameters"] == model.count_params(), name
        print("built", len(zoo.list_models()))
        """,
        env={"KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"built {len(zoo.list_models())}" in result.stdout
