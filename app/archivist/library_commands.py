"""``archivist index``, ``archivist sources`` and ``archivist search``: the library on the command line.

They render core services, whichever plugin provides them (rule 9): ``index`` and
``sources`` the application's :class:`~archivist.library.LibraryService`, ``search``
the retrievers, merged exactly as the assistant retrieves for a question. Added to the
CLI by :func:`add_library_commands`. Progress and notes go to stderr, so ``--json``
keeps stdout clean.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# File names, paths and passages come from the user's files, not from the user: printed
# through printable() so that none can drive the terminal (archivist.terminal).
from archivist.terminal import printable

if TYPE_CHECKING:
    from archivist.library import LibraryService
    from archivist.types import Passage, SkippedFile, SyncProgress, SyncReport


def add_library_commands(cli: click.Group) -> None:
    cli.add_command(index_command)
    cli.add_command(search_command)
    cli.add_command(sources)


def _library(ctx: click.Context) -> LibraryService:
    """The application's library; with none, its one-line reason is the error (exit 1)."""
    from archivist.errors import ArchivistError

    library: LibraryService = ctx.find_root().obj.app.library
    if not library.available:
        raise ArchivistError(library.problem())
    return library


# -- index ------------------------------------------------------------------------------


class ProgressBar:
    """click's progress bar on stderr, one per source, naming the file being read and,
    while a big one is embedded, its share ("report.pdf (45% embedded, searchable by keyword)":
    its words are indexed before its vectors), or while a
    scan is read by OCR, its pages ("scan.pdf (OCR: 3 of 12 pages)")."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.root = ""
        self.done = 0

    def __call__(self, progress: SyncProgress) -> None:
        if self.bar is None or progress.root != self.root:
            self.close()
            self.bar = click.progressbar(length=progress.total, label="indexing", file=sys.stderr,
                                         item_show_func=item_label)
            self.bar.__enter__()
            self.root, self.done = progress.root, 0
        share = ""
        if progress.part_total and progress.stage == "ocr":
            share = f"\0OCR: {progress.part_done} of {progress.part_total} pages"
        elif progress.part_total:
            share = f"\0{100 * progress.part_done // progress.part_total}%"
        self.bar.current_item = progress.path + share if progress.path else ""
        self.bar.update(progress.done - self.done)
        self.bar.render_progress()  # update() draws nothing for 0 steps: the new name must show
        self.done = progress.done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def item_label(item: str | None) -> str:
    """The file now indexed, for the progress bar; "path\\0NN%" while a big one is embedded,
    "path\\0OCR: 3 of 12 pages" while a scan is read."""
    if not item:
        return ""
    path, _, share = item.partition("\0")
    name = printable(Path(path).name)[-40:]
    if share.endswith("%"):
        return f"{name} ({share} embedded, searchable by keyword)"
    return f"{name} ({share})" if share else name


@click.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--watch", is_flag=True, help="Keep running and re-index files as they change.")
@click.pass_context
def index_command(ctx: click.Context, paths: tuple[Path, ...], as_json: bool, watch: bool) -> None:
    """Index files and folders (new, changed and deleted files are brought up to date)."""
    library = _library(ctx)
    bar = ProgressBar()
    try:
        report = library.index(list(paths), progress=None if as_json else bar)
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        from archivist.library import summary_line

        click.echo(summary_line(report))
        for line in skipped_lines(report.skipped):
            click.echo(line)
    try:
        if watch:
            watch_until_interrupted(library, [str(Path(p).resolve()) for p in paths])
    finally:
        library.close()


def skipped_lines(skipped: list[SkippedFile], names_shown: int = 3) -> list[str]:
    """The skipped files for a person: each problem file on its own line, but files of
    a type Archivist does not read one line per type (a folder of pictures would
    otherwise bury the one PDF that failed). ``--json`` keeps the full list."""
    by_type: dict[str, list[str]] = {}
    lines: list[str] = []
    for file in skipped:
        if file.reason.startswith("unsupported file type"):
            by_type.setdefault(file.reason, []).append(Path(file.path).name)
        else:
            lines.append(printable(f"  skipped {file.path}: {file.reason}"))
    for reason, names in by_type.items():
        kind = reason.split("'")[1] if "'" in reason else reason
        listed = ", ".join(names[:names_shown]) + (f" and {len(names) - names_shown} more" if len(names) > names_shown else "")
        files = "file" if len(names) == 1 else "files"
        lines.append(printable(f"  skipped {len(names)} {kind} {files}, a type Archivist does not read: {listed}"))
    return lines


def watch_until_interrupted(library: LibraryService, roots: list[str]) -> None:
    from archivist.errors import ArchivistError

    def changed(report: SyncReport) -> None:
        click.echo(f"re-indexed {len(report.indexed)}, removed {len(report.removed)}", err=True)

    try:
        watching = library.watch(roots, changed)
    except ArchivistError as exc:
        raise ArchivistError(f"cannot watch the folders for changes: {exc}") from exc
    if watching is None:
        raise ArchivistError(f"the library “{library.name}” cannot watch folders for changes")
    click.echo("watching for changes (Ctrl+C to stop)", err=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        watching.stop()


# -- sources ----------------------------------------------------------------------------


@click.group("sources")
def sources() -> None:
    """The folders and files you indexed."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_list(ctx: click.Context, as_json: bool) -> None:
    """List indexed sources with their file, passage and skipped counts."""
    rows = _library(ctx).sources()
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in rows], ensure_ascii=False))
        return
    if not rows:
        click.echo("no sources yet: `archivist index PATH` adds one")
    for r in rows:
        gone = "  MISSING: gone from the disk, not cited (`archivist sources prune` removes it)" if r.missing else ""
        click.echo(f"{printable(r.path)}  {r.files} files, {r.passages} passages, {r.skipped} skipped "
                   f"(added {r.added_at}){gone}")


@sources.command("remove")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_remove(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Forget a source and remove everything indexed from it."""
    library = _library(ctx)
    key = str(Path(path).expanduser().resolve())
    try:
        removed = library.remove(key)
    finally:
        library.close()
    if as_json:
        click.echo(json.dumps({"removed": key, "files": removed}))
    else:
        click.echo(f"removed {key} ({removed} files)")


@sources.command("prune")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_prune(ctx: click.Context, as_json: bool) -> None:
    """Remove every source whose folder or file is gone, with what was indexed from it."""
    library = _library(ctx)
    try:
        gone = library.prune()
    finally:
        library.close()
    if as_json:
        click.echo(json.dumps({"removed": [{"path": s.path, "files": s.files + s.skipped} for s in gone]},
                              ensure_ascii=False))
        return
    if not gone:
        click.echo("no missing sources: every folder and file added is still there")
    for s in gone:
        click.echo(printable(f"removed {s.path} (gone from the disk; {s.files + s.skipped} files forgotten)"))


# -- search -----------------------------------------------------------------------------


@click.command("search")
@click.argument("query", required=False)
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@click.option("--jsonl", "jsonl", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
              help="Read one query per line (a JSON string or an object with a \"query\" field) "
                   "and write one JSON result per line.")
@click.pass_context
def search_command(ctx: click.Context, query: str | None, k: int, as_json: bool, jsonl: Path | None) -> None:
    """Find the passages of your indexed files that best match QUERY (as a question would)."""
    if (query is None) == (jsonl is None):
        raise click.UsageError("give either a QUERY or --jsonl FILE")
    from archivist.queries import read_queries

    assistant = ctx.find_root().obj.app.assistant()
    if jsonl is not None:
        for _, q in read_queries(jsonl):
            passages, _ = assistant.retrieve(q, k)
            click.echo(json.dumps({"query": q, "hits": [hit_dict(p) for p in passages]}, ensure_ascii=False))
        return
    assert query is not None  # one of the two, checked above
    passages, any_documents = assistant.retrieve(query, k)
    if as_json:
        click.echo(json.dumps({"query": query, "hits": [hit_dict(p) for p in passages]}, ensure_ascii=False))
        return
    if not any_documents:
        click.echo("no results: nothing is indexed yet (`archivist index PATH` adds a folder)")
    elif not passages:
        click.echo("no passages close enough to the query")
    for n, p in enumerate(passages, 1):
        where = f" p.{p.locator.page}" if p.locator.page else (f" [{p.locator.section}]" if p.locator.section else "")
        click.secho(printable(f"[{n}] {p.path}{where} ({p.locator.start}-{p.locator.end}) score {p.score:.4f}"),
                    bold=True)
        snippet = " ".join(p.text.split())
        click.echo(f"    {printable(snippet[:300])}{'…' if len(snippet) > 300 else ''}")


def hit_dict(passage: Passage) -> dict[str, Any]:
    """A passage as ``search --json`` prints it: flat, where it is first."""
    loc = passage.locator
    return {"path": passage.path, "page": loc.page, "start": loc.start, "end": loc.end, "text": passage.text,
            "score": passage.score, "title": passage.title, "section": loc.section, "chunk_id": passage.chunk_id}
