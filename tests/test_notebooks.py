"""Source notebooks stay thin and clean: a parameters cell, code that parses, no stored outputs."""
import ast
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin_and_parses(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any("parameters" in c.metadata.get("tags", []) for c in code), "no parameters cell"
    for c in code:
        ast.parse(c.source)
        assert not c.get("outputs"), "source notebooks are committed without outputs"
        assert "def " not in c.source and "class " not in c.source, "logic belongs in src/matrepro"
    assert nb.cells[0].cell_type == "markdown"


def test_every_notebook_is_a_pipeline_stage():
    dvc = (ROOT / "dvc.yaml").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in dvc
