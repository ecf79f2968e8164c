"""Docstring examples that show output are run, each module in a fresh process.

A fresh process per module, because some examples fix process-wide state (the
`tf.distribute` strategy) that later tests must choose themselves.
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

NEEDS_MNIST = pytest.mark.skipif(not os.environ.get("ZOO_DATA_DIR"), reason="ZOO_DATA_DIR (the MNIST files) is not set")
# Modules whose examples need no prepared data. Each costs a fresh TensorFlow
# process (about 10 s on a 2-core CPU): the package's own examples run by
# default, the others with the slow tests.
WITHOUT_DATA = [
    "zoo",
    "zoo.registry",
    pytest.param("zoo.demo.metrics", marks=pytest.mark.slow),
    pytest.param("zoo.training.strategy", marks=pytest.mark.slow),
    pytest.param("zoo.datasets.mnist_text.mnist_files", marks=[NEEDS_MNIST, pytest.mark.slow]),
]
# These prepare data or train, so they run with the slow tests.
SLOW = [pytest.param(name, marks=NEEDS_MNIST) for name in ("zoo.data.pipeline", "zoo.training", "zoo.demo.runner")]


def _run_doctests(module: str, cwd: pathlib.Path, prepare: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Runs a module's doctests in a new process after preparing `prepare` configs quietly.

    The examples assume prepared data: TFDS's preparation messages are not theirs.
    """
    script = (
        "import contextlib, doctest, importlib, io, sys\n"
        f"for config in {prepare!r}:\n"
        "    from zoo.data import pipeline\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        pipeline.load_builder(config)\n"
        f"module = importlib.import_module({module!r})\n"
        "result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)\n"
        "print(f'attempted={result.attempted} failed={result.failed}')\n"
        "sys.exit(1 if result.failed or not result.attempted else 0)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFDS_DATA_DIR": str(cwd / "tensorflow_datasets")}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.mark.parametrize("module", WITHOUT_DATA)
def test_docstring_examples(module, tmp_path):
    result = _run_doctests(module, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("module", SLOW)
def test_docstring_examples_that_train_or_prepare_data(module, tmp_path):
    result = _run_doctests(module, tmp_path, prepare=("digits", "vqa", "describe"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
