"""``archivist notebooks``: commands about Jupyter notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import click

from archivist import UnreadableDocument
from archivist_notebooks.notebook import notebook_stats, read_notebook


@click.group()
def notebooks() -> None:
    """Jupyter notebooks (.ipynb), from the archivist-notebooks plugin."""


@notebooks.command("stats")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(file: Path, as_json: bool) -> None:
    """Count the cells, words and lines of code in a notebook."""
    try:
        counts = notebook_stats(read_notebook(file))
    except UnreadableDocument as exc:
        # An Archivist error: the command line shows it as one line and exits with 1.
        raise UnreadableDocument(f"{file}: {exc}") from exc
    if as_json:
        click.echo(json.dumps({"file": str(file), **counts.to_dict()}, indent=2))
        return
    click.echo(f"{file}")
    click.echo(
        f"  cells       {counts.cells} ({counts.markdown_cells} markdown, "
        f"{counts.code_cells} code, {counts.other_cells} other)"
    )
    click.echo(f"  words       {counts.words} (in markdown cells)")
    click.echo(f"  code lines  {counts.code_lines} (not counting blank lines)")
    click.echo(f"  outputs     {counts.outputs} (code cells that show output)")
