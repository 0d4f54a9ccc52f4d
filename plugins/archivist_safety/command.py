"""``archivist safety check``: screen text from stdin, or a JSONL batch, with the built-in filter."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from archivist import ChatMessage, Stage


def build_group(
    settings: dict[str, Any] | None = None, home: Path | None = None, ask: Callable[..., Any] | None = None
) -> click.Group:
    """The ``safety`` command group, screening with ``settings`` (the ``[safety]`` table)
    and the learned head's encoder from ``home`` (rules only without one); ``ask`` is
    :meth:`archivist.PluginContext.ask_model`, for ``--judge``."""

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
    @click.option(
        "--judge/--no-judge",
        default=None,
        help="Ask the chosen chat model about texts the learned head is unsure of (loads it); "
        "default: the [safety] judge setting.",
    )
    def check(stage: str, as_json: bool, jsonl: Any, judge: bool | None) -> None:
        """Screen text read from stdin (or every line of --jsonl FILE) and print the verdict."""
        # Imported here: `archivist --help` must not pay for the filter's models.
        from archivist_safety.filter import ArchivistSafetyFilter
        from archivist_safety.judge import ModelJudge

        chosen = dict(settings or {})
        if judge is not None:
            chosen["judge"] = judge
        try:
            screener = ArchivistSafetyFilter.from_settings(chosen, home)
        except ValueError as exc:
            raise click.ClickException(f"bad [safety] settings: {exc}") from exc
        if screener.policy.judge:
            if ask is None:
                raise click.ClickException("--judge needs the application's model, which this command was not given")
            # Load the model now, so a missing or broken one stops here with a message
            # rather than leaving every line to the head alone.
            if ask([ChatMessage("user", "Reply with one word: ready")], max_new_tokens=1, timeout_s=60.0,
                   load=True) is None:
                raise click.ClickException(
                    "--judge: the chat model could not be loaded or did not answer (see the log above; "
                    "`archivist models list` shows what is installed)"
                )
            screener.judge = ModelJudge(ask, screener.policy.judge_timeout_s, load=True)
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
