"""The demo notebook: paired with its jupytext source, outputs stripped, and it runs in quick mode."""

import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "mnist_text_demo.ipynb"
SOURCE = NOTEBOOKS / "mnist_text_demo.py"


def _cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_notebook_matches_its_source_and_has_no_outputs():
    import jupytext

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert _cells(notebook) == _cells(jupytext.read(SOURCE)), (
        "notebooks/mnist_text_demo.ipynb is out of date: run "
        "`jupytext --to ipynb notebooks/mnist_text_demo.py` and clear its outputs"
    )
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs must be stripped"


@pytest.mark.slow
def test_notebook_runs_in_quick_mode(tmp_path, demo_data_dir, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("ZOO_DEMO_QUICK", "1")
    monkeypatch.setenv("ZOO_DEMO_DATA_DIR", demo_data_dir)
    monkeypatch.setenv("ZOO_DEMO_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("ZOO_DEMO_RESULTS", str(tmp_path / "no_results.json"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "quick mode" in outputs
    assert "is it even?" in outputs and "->" in outputs
    for name in ("confusion_matrix.png", "attention_map.png", "export", "ablation/results.json"):
        assert os.path.exists(tmp_path / "out" / name), name
