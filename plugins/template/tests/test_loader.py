"""The .ipynb loader, called the way Archivist calls it: through the plugin host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cells import code, markdown, stream

import archivist_notebooks
from archivist import Document, DocumentLoader, UnreadableDocument


@pytest.fixture()
def loader(archivist_host):
    archivist_host.add("notebooks", archivist_notebooks)
    found = [c for c in archivist_host.loaders() if c.plugin == "notebooks"]
    assert len(found) == 1
    return found[0]


def test_the_plugin_registers_a_loader_for_ipynb(loader) -> None:
    assert isinstance(loader.obj, DocumentLoader)
    assert loader.obj.extensions == (".ipynb",)


def test_cells_become_parts_located_by_cell_number_and_kind(archivist_host, loader, write_notebook) -> None:
    path = write_notebook(
        markdown("# Sales in 2024\n\nRevenue grew in every quarter."),
        code("import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df.revenue.sum())",
             stream("1250000\n")),
        {"cell_type": "raw", "metadata": {}, "source": "%%latex"},
        code(""),  # empty cells leave no part
        markdown("Most of it came from **Lisbon**."),
    )
    doc = archivist_host.run(loader, "load", path)
    assert isinstance(doc, Document)
    assert doc.title == "Sales in 2024"
    assert doc.path == str(path)
    sections = [p.locator.section for p in doc.parts]
    assert sections == ["cell 1 (markdown)", "cell 2 (code)", "cell 2 (output)", "cell 5 (markdown)"]
    code_part = doc.parts[1]
    assert code_part.text.startswith("import pandas as pd\n")
    assert (code_part.locator.start, code_part.locator.end) == (0, len(code_part.text))
    assert doc.parts[2].text == "1250000"
    assert "Lisbon" in doc.text
    assert "%%latex" not in doc.text


def test_rich_results_and_errors_are_read_as_text(archivist_host, loader, write_notebook) -> None:
    path = write_notebook(
        code("2 + 2", {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                       "data": {"text/plain": ["4"], "text/html": ["<b>4</b>"]}}),
        code("1 / 0", {"output_type": "error", "ename": "ZeroDivisionError",
                       "evalue": "division by zero", "traceback": ["\x1b[0;31m...\x1b[0m"]}),
    )
    doc = archivist_host.run(loader, "load", path)
    outputs = {p.locator.section: p.text for p in doc.parts if "output" in p.locator.section}
    assert outputs == {"cell 1 (output)": "4", "cell 2 (output)": "ZeroDivisionError: division by zero"}


def test_the_kernel_language_is_kept_as_metadata(archivist_host, loader, write_notebook) -> None:
    path = write_notebook(code("x <- 1"), kernelspec={"name": "ir", "language": "R"})
    doc = archivist_host.run(loader, "load", path)
    assert doc.metadata["language"] == "R"
    assert doc.mime_type == "application/x-ipynb+json"


def test_old_nbformat_3_notebooks_are_read_too(archivist_host, loader, tmp_path: Path) -> None:
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({
        "nbformat": 3, "metadata": {"name": "old"},
        "worksheets": [{"cells": [
            {"cell_type": "markdown", "source": ["Written in 2013."]},
            {"cell_type": "code", "input": ["print('hi')"], "language": "python",
             "outputs": [{"output_type": "stream", "stream": "stdout", "text": ["hi\n"]}]},
        ]}],
    }), encoding="utf-8")
    doc = archivist_host.run(loader, "load", path)
    assert [(p.locator.section, p.text) for p in doc.parts] == [
        ("cell 1 (markdown)", "Written in 2013."),
        ("cell 2 (code)", "print('hi')"),
        ("cell 2 (output)", "hi"),
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty file"),
        ("{ this is not json", "invalid JSON at line 1"),
        ('{"name": "a JSON file, but no cells"}', "without a list of cells"),
        ('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "no text"),
        ("\udcff", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_readable_notebook_says_why(loader, tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(UnreadableDocument, match=reason):
        loader.obj.load(path)


def test_a_notebook_from_the_sample_documents_loads(archivist_host, loader, archivist_sample_docs: Path) -> None:
    notebooks = sorted(archivist_sample_docs.glob("*.ipynb"))
    assert notebooks, "Archivist's sample documents include a notebook"
    for path in notebooks:
        doc = archivist_host.run(loader, "load", path)
        assert doc.parts
        assert all(p.locator.section.startswith("cell ") for p in doc.parts)
