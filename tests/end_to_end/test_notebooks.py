"""The analyst notebooks run, top to bottom, against a store the nightly job wrote: they never rot.
Each carries its own assertions (contributions that add up, a balanced ledger, nobody unauthorised
published, out-of-time figures that match the registry's)."""

import shutil
from datetime import date
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
DAY = date(2026, 11, 28)


@pytest.fixture(scope="module")
def night(first_night, tmp_path_factory):
    """A copy of the loan book's first night (`valuecredit run`, which trained the first champion)."""
    assert (first_night / "exit_code").read_text() == "0"
    assert "trained and promoted" in (first_night / "stdout.txt").read_text(encoding="utf-8").replace("\n", " ")
    work = tmp_path_factory.mktemp("notebooks")
    shutil.copytree(first_night, work, dirs_exist_ok=True)
    return work / "run.duckdb"


@pytest.mark.parametrize("name, expect", [
    ("nightly_walkthrough.ipynb", "firms scored"),
    ("model_validation.ipynb", "recomputed"),
])
def test_notebook_executes_against_a_night(night, name, expect, monkeypatch):
    monkeypatch.setenv("VALUECREDIT_DB", str(night))
    monkeypatch.setenv("VALUECREDIT_MODELS", str(night.parent / "models"))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert expect in text and str(DAY) in text
