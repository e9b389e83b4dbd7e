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
    pages = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out.output_type != "error", out
            data = out.get("data", {})
            if "text/html" in data:
                match = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts".*></iframe>', data["text/html"], re.S)
                assert match, data["text/html"][:200]
                pages.append(html.unescape(match.group(1)))
    # saliency, layer_predictions, rankings, rankings_watch, explore
    assert len(pages) == 5
    assert all(p.startswith("<!DOCTYPE html>") for p in pages)
    # The pages, for the browser check (scripts/test.sh opens them in Chromium and Firefox).
    out_dir = os.environ.get("ECCO_NOTEBOOK_PAGES")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for i, page in enumerate(pages):
            (Path(out_dir) / f"view-{i}.html").write_text(page, encoding="utf-8")
