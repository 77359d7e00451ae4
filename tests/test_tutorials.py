"""Both notebook tutorials execute from top to bottom (with reduced settings), and are stored without outputs."""

import os
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("*.ipynb"))


def test_there_are_two_tutorials_stored_without_outputs():
    import nbformat

    assert [p.name for p in TUTORIALS] == ["01_can_i_trust_this_fv.ipynb", "02_manipulating_a_fv.ipynb"]
    for path in TUTORIALS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_executes(path, tmp_path, monkeypatch, mnist_cnn):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("CAPTUM_SLINGSHOT_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error, naming the cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the tutorials show their pictures
    if path.stem.startswith("01"):
        text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "suspect -> flagged: [0]" in text and "original -> flagged: []" in text
        assert (tmp_path / "tutorial_outputs" / "suspect_audit.html").is_file()
