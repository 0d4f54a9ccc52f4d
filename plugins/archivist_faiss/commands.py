"""``archivist index``, ``archivist search`` and ``archivist sources`` (added by the plugin).

The home folder comes from the host's click context object (``ctx.obj.home``, set by
``archivist.cli``); without one (the group used on its own) from ``ARCHIVIST_HOME`` or
the platform default. Loaders other plugins registered are taken from the host too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from archivist import PluginContext
from archivist_faiss.loading import builtin_loaders

_context: PluginContext | None = None


def _home(ctx: click.Context) -> Path:
    if _context is not None:
        return Path(_context.home)
    home = getattr(ctx.find_root().obj, "home", None) or os.environ.get("ARCHIVIST_HOME")
    if not home:
        raise click.ClickException("no home folder: run through `archivist` or set ARCHIVIST_HOME")
    return Path(home)


def _other_loaders(ctx: click.Context) -> list[Any]:
    """Loaders other plugins registered (the built-in ones are the index's own)."""
    if _context is None:
        return []
    own = {type(loader) for loader in builtin_loaders()}
    return [loader for loader in _context.loaders() if type(loader) not in own]


def _open(ctx: click.Context) -> Any:
    """The index; building the encoder on first use is announced on stderr (never stdout,
    which --json keeps clean)."""
    from archivist_faiss.index import open_index

    def say(message: str) -> None:
        click.echo(message, err=True)

    return open_index(_home(ctx), loaders=_other_loaders(ctx), progress=say)


def register(cli: click.Group, context: PluginContext | None = None) -> None:
    global _context
    _context = context
    cli.add_command(index_cmd)
    cli.add_command(search_cmd)
    cli.add_command(sources)


def _item_label(item: str | None) -> str:
    """The file now indexed, for the progress bar; "path\\0NN%" while a big one is embedded."""
    if not item:
        return ""
    path, _, share = item.partition("\0")
    name = Path(path).name[-40:]
    return f"{name} ({share} embedded)" if share else name


@click.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--watch", is_flag=True, help="Keep running and re-index files as they change.")
@click.pass_context
def index_cmd(ctx: click.Context, paths: tuple[Path, ...], as_json: bool, watch: bool) -> None:
    """Index files and folders (new, changed and deleted files are brought up to date)."""
    ix = _open(ctx)
    bar: list[Any] = []

    def progress(done: int, total: int, path: str) -> None:
        if as_json:
            return
        if not bar or bar[0][1] != total:
            if bar:
                bar[0][0].__exit__(None, None, None)
            pb = click.progressbar(length=total, label="indexing", file=sys.stderr,
                                   item_show_func=_item_label)
            pb.__enter__()
            bar[:] = [(pb, total, 0)]
        pb, _, seen = bar[0]
        pb.current_item = path
        pb.update(done - seen)
        pb.render_progress()  # update() draws nothing for 0 steps: the new name must show
        bar[0] = (pb, total, done)

    def part(path: str, done: int, total: int) -> None:
        # a big file (a 600-page PDF embeds for a minute or more) shows how far it is
        if bar and total > 64:
            pb, _, _ = bar[0]
            pb.current_item = f"{path}\0{100 * done // total}%"
            pb.render_progress()

    try:
        report = ix.index(paths, progress=progress, part_progress=part)
    finally:
        if bar:
            bar[0][0].__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo(f"{len(report.indexed)} indexed ({report.pages} pages, {report.chunks} chunks), "
                   f"{report.unchanged} unchanged, {len(report.removed)} removed, "
                   f"{len(report.skipped)} skipped in {report.seconds:.1f} s")
        for line in skipped_lines(report.skipped):
            click.echo(line)
    if watch:
        from archivist_faiss.watch import watch_forever

        click.echo("watching for changes (Ctrl+C to stop)", err=True)
        watch_forever(ix, [Path(p).resolve() for p in paths],
                      lambda r: click.echo(f"re-indexed {len(r.indexed)}, removed {len(r.removed)}", err=True))
    ix.close()


@click.command("search")
@click.argument("query", required=False)
@click.option("-k", "k", default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@click.option("--jsonl", "jsonl", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="Read one query per line (a JSON string or an object with a \"query\" field) "
                   "and write one JSON result per line.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid",
              show_default=True, help="Which ranking to use.")
@click.pass_context
def search_cmd(ctx: click.Context, query: str | None, k: int, as_json: bool, jsonl: str | None,
               mode: str) -> None:
    """Find the passages of your indexed files that best match QUERY."""
    if (query is None) == (jsonl is None):
        raise click.UsageError("give either a QUERY or --jsonl FILE")
    ix = _open(ctx)
    try:
        if jsonl is not None:
            stream = sys.stdin if jsonl == "-" else open(jsonl, encoding="utf-8")
            with stream:
                for n, line in enumerate(stream, 1):
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line)
                    except ValueError as exc:
                        raise click.ClickException(f"line {n}: not JSON ({exc})") from exc
                    q = item.get("query") if isinstance(item, dict) else item
                    if not isinstance(q, str):
                        raise click.ClickException(f"line {n}: no query string")
                    hits = ix.search(q, k, mode=mode)
                    click.echo(json.dumps({"query": q, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
            return
        hits = ix.search(query, k, mode=mode)
        if as_json:
            click.echo(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
            return
        if not hits:
            click.echo("no results (have you run `archivist index PATH`?)")
        for n, h in enumerate(hits, 1):
            where = f" p.{h.page}" if h.page else (f" [{h.section}]" if h.section else "")
            click.secho(f"[{n}] {h.path}{where} ({h.start}-{h.end}) score {h.score:.4f}", bold=True)
            snippet = " ".join(h.text.split())
            click.echo(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    finally:
        ix.close()


@click.group("sources")
def sources() -> None:
    """The folders and files you indexed."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_list(ctx: click.Context, as_json: bool) -> None:
    """List indexed sources with their file and chunk counts."""
    ix = _open(ctx)
    rows = ix.sources()
    ix.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no sources yet: `archivist index PATH` adds one")
    for r in rows:
        click.echo(f"{r['path']}  {r['indexed']} files, {r['chunks']} chunks, {r['skipped']} skipped "
                   f"(added {r['added_at']})")


@sources.command("remove")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_remove(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Forget a source and remove everything indexed from it."""
    ix = _open(ctx)
    try:
        removed = ix.remove_source(path)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    finally:
        ix.close()
    if as_json:
        click.echo(json.dumps({"removed": str(Path(path).resolve()), "files": removed}))
    else:
        click.echo(f"removed {Path(path).resolve()} ({removed} files)")


def skipped_lines(skipped: list[tuple[str, str]], names_shown: int = 3) -> list[str]:
    """The skipped files for a person: each problem file on its own line, but files of
    a type Archivist does not read one line per type (a folder of pictures would
    otherwise bury the one PDF that failed). ``--json`` keeps the full list."""
    by_type: dict[str, list[str]] = {}
    lines: list[str] = []
    for path, reason in skipped:
        if reason.startswith("unsupported file type"):
            by_type.setdefault(reason, []).append(Path(path).name)
        else:
            lines.append(f"  skipped {path}: {reason}")
    for reason, names in by_type.items():
        kind = reason.split("'")[1] if "'" in reason else reason
        listed = ", ".join(names[:names_shown]) + (f" and {len(names) - names_shown} more" if len(names) > names_shown else "")
        files = "file" if len(names) == 1 else "files"
        lines.append(f"  skipped {len(names)} {kind} {files}, a type Archivist does not read: {listed}")
    return lines
