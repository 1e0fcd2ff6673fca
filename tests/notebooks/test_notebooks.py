"""notebooks/: stored without outputs, and each one runs from top to bottom in quick mode."""

import nbformat
import pytest

from tests.scripts import ROOT, load_script

NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def notebook_runner():
    """notebooks/run.py, the script that executes the notebooks (a folder, not a package)."""
    return load_script("notebooks/run.py")


def test_there_are_a_few_notebooks():
    assert 1 <= len(NOTEBOOKS) <= 7, [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_outputs_are_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    executed = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert executed == [], f"{path.name}: clear the outputs of cells {executed}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_in_quick_mode(path, monkeypatch):
    monkeypatch.setenv("KCNN_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook_runner().execute(path, timeout=600)  # a failing cell raises, with its traceback
