"""``archivist safety check``: screen text from stdin, or a JSONL batch, with the built-in filter."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from archivist import Stage


def build_group(settings: dict[str, Any] | None = None, home: Path | None = None) -> click.Group:
    """The ``safety`` command group, screening with ``settings`` (the ``[safety]`` table)
    and the learned head's encoder from ``home`` (rules only without one)."""

    @click.group()
    def safety() -> None:
        """Check text with the safety filter."""

    @safety.command()
    @click.option("--stage", type=click.Choice([s.value for s in Stage]), default="input", show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
    @click.option(
        "--jsonl",
        "jsonl",
        type=click.File("r", encoding="utf-8"),
        help='Screen each line of FILE (\'-\' for stdin): a JSON string or an object with a "text" field.',
    )
    def check(stage: str, as_json: bool, jsonl: Any) -> None:
        """Screen text read from stdin (or every line of --jsonl FILE) and print the verdict."""
        # Imported here: `archivist --help` must not pay for the filter's models.
        from archivist_safety.filter import ArchivistSafetyFilter

        try:
            screener = ArchivistSafetyFilter.from_settings(settings, home)
        except ValueError as exc:
            raise click.ClickException(f"bad [safety] settings: {exc}") from exc
        screener.warm_up()  # a batch waits for the encoder rather than screening some lines without it
        st = Stage(stage)
        if jsonl is None:
            verdict = screener.screen(sys.stdin.read(), st)
            click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False) if as_json else _line(verdict))
            return
        for number, raw in enumerate(jsonl, start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise click.ClickException(f"line {number}: not valid JSON ({exc.msg})") from exc
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                text = item["text"]
            elif isinstance(item, str):
                text = item
            else:
                raise click.ClickException(
                    f'line {number}: expected a JSON string or an object with a "text" string'
                )
            out = screener.screen(text, st).to_dict()
            out["line"] = number
            click.echo(json.dumps(out, ensure_ascii=False))

    return safety


safety = build_group({})


def _line(verdict: Any) -> str:
    cats = ", ".join(verdict.categories) or "none"
    text = f"{verdict.action.value}: categories {cats}; score {verdict.score:.2f}"
    if verdict.reason:
        text += f"; {verdict.reason}"
    return text
