"""The evaluation notebook runs top to bottom on small worlds (it would rot otherwise)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent
NOTEBOOKS = ROOT / "notebooks"


def test_evaluation_notebook_executes(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILLGUARD_NB_SMALL", "1")
    # the research harness is not part of the installed package: the repository root is its path
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws PNGs
    nb = nbformat.read(NOTEBOOKS / "evaluation.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # PR curves, score distributions, leave-one-tactic-out PR curves
