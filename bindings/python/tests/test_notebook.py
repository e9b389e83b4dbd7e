"""The tutorial notebook (examples/tutorial.ipynb) runs headless, and every view it shows is
the report page in a sandboxed iframe."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from conftest import ROOT


def test_tutorial_notebook_executes(tmp_path: Path) -> None:
    nb = nbformat.read(ROOT / "examples" / "tutorial.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    fragments = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out.output_type != "error", out
            data = out.get("data", {})
            if "text/html" in data:
                fragments.append(data["text/html"])
    # saliency, layer_predictions, rankings, rankings_watch, explore
    assert len(fragments) == 5
    for fragment in fragments:
        match = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts".*></iframe>', fragment, re.S)
        assert match, fragment[:200]
        assert html.unescape(match.group(1)).startswith("<!DOCTYPE html>")
    # Host pages showing the views as the notebook does, for the browser check that
    # scripts/test_python.sh runs next (`data-ready`: the host itself has nothing to draw).
    out_dir = os.environ.get("ECCO_NOTEBOOK_PAGES")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for i, fragment in enumerate(fragments):
            host = f'<!DOCTYPE html><html lang="en" data-ready="true"><head><meta charset="utf-8"><title>view {i}</title></head><body>{fragment}</body></html>'
            (Path(out_dir) / f"view-{i}.html").write_text(host, encoding="utf-8")
