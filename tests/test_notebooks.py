"""notebooks/: one per lecture section. Each is stored without outputs, quotes the lecture
verbatim, asks the student to predict before it measures, installs cnnlab when run in Colab,
imports only public cnnlab modules, and runs top to bottom in a real Jupyter kernel (offline,
these CPU cores)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.test_lecture_verdicts import _lecture, _verbatim

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _source(path: Path, kind: str) -> str:
    return "\n".join(c.source for c in _read(path).cells if c.cell_type == kind)


def test_the_lecture_sections_have_their_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names[:3] == [
        "01_convolution.ipynb",
        "02_mlp_vs_convnet.ipynb",
        "03_architectures.ipynb",
    ]
    page = (REPO / "docs" / "python-api.md").read_text()
    assert re.findall(r"^\| `(\d\d_\w+\.ipynb)` \|", page, re.M) == names  # the page lists them all


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_stored_clean_and_says_what_it_should(path):
    notebook = _read(path)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs committed"
    text = _source(path, "markdown")
    assert "**Predict first**" in text
    assert '"google.colab" in sys.modules' in code[0].source  # Colab installs cnnlab first
    imports = re.findall(r"^\s*(?:from|import) (cnnlab[\w.]*)", _source(path, "code"), re.M)
    assert imports and not [m for m in imports if "._" in m or m.startswith("cnnlab._")]
    lecture = _lecture()
    quotes = re.findall(r"^> “(.+?)”", text, re.M)
    assert quotes
    for quote in quotes:
        assert _verbatim(quote, lecture), f"{path.name}: {quote!r} is not in the lecture"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_top_to_bottom(path, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("CNNLAB_ROOT", str(tmp_path))
    monkeypatch.setenv("CNNLAB_DATA", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = _read(path)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
