"""The ``archivist`` command line: the same Application and Assistant the GUI uses.

Errors a user can act on are one line on stderr (exit 1), never a traceback; ``--debug``
shows the traceback for bug reports. Plugin commands are added through the
``register_commands`` hook before click parses the command line, so the home folder and
safe mode are read from argv first.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from archivist import __version__
from archivist.config import resolve_home
from archivist.errors import ArchivistError
from archivist.queries import read_queries
from archivist.terminal import printable

PROCESS_START = time.perf_counter()


class State:
    """What every command can reach through ``click``'s context object."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.home: Path = app.paths.home
        for warning in getattr(app, "warnings", ()):  # a damaged config.toml: the defaults are used
            click.secho(f"warning: {warning}", fg="yellow", err=True)
        _report_plugin_errors(app.host)


def _report_plugin_errors(host: Any) -> None:
    def show(error: Any) -> None:
        state = "; it stays on" if host.enabled(error.plugin) else " and is off for this session"
        click.secho(
            printable(f"plugin {error.plugin} failed ({error.where}){state}: {error.message}"),
            fg="yellow",
            err=True,
        )

    for error in host.errors:
        show(error)
    host.listeners.append(show)


pass_state = click.make_pass_decorator(State)


class _PrintableFormatter(logging.Formatter):
    """Log lines quote plugins, files and models: printed as text (archivist.terminal)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _log_to_terminal(debug: bool) -> None:
    """Log to stderr, one message a line (a no-op when logging is set up already)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("%(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="archivist")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ARCHIVIST_HOME",
    help="Data folder (default: the platform's user data folder).",
)
@click.option("--safe-mode", is_flag=True, help="Start with third-party plugins off.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, safe_mode: bool, debug: bool) -> None:
    """Archivist: a private assistant that answers from your own files, offline."""
    _log_to_terminal(debug)
    if ctx.obj is None:  # called from Python rather than through main()
        from archivist.application import Application

        ctx.obj = State(Application(home, safe_mode=safe_mode))


def _options(f: Any) -> Any:
    f = click.option("--model", "model", help="Model id or folder (default: the chosen model).")(f)
    f = click.option("--max-tokens", type=click.IntRange(1, 32768), default=512, show_default=True)(f)
    f = click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=0.0, show_default=True)(f)
    f = click.option("--no-docs", is_flag=True, help="Answer without searching your documents.")(f)
    f = click.option("-k", "--sources", type=click.IntRange(1, 50), help="Passages to retrieve.")(f)
    f = click.option("--collection", "collections", multiple=True, metavar="NAME",
                     help="Answer from this collection only ('library': your own; repeat for several; "
                          "default: all, or the conversation's choice).")(f)
    f = click.option("--file", "files", multiple=True, metavar="PATH", type=click.Path(path_type=Path),
                     help="Answer from this whole file (repeat for several): pinned to the conversation, read "
                          "whole when it fits the model's context, else in parts.")(f)
    return f


def _turn_kwargs(assistant: Any, options: Any, no_docs: bool, sources: int | None, model: str | None,
                 collections: tuple[str, ...], files: tuple[Path, ...] = ()) -> dict[str, Any]:
    """What a turn asks of ``assistant.stream`` besides the question; the collections
    are checked first, so an unknown name fails before the model loads. No ``--file``
    keeps the conversation's pinned files (None)."""
    chosen = assistant.check_collections(collections) if collections else None
    return dict(options=options, use_documents=not no_docs, sources=sources, model=model, collections=chosen,
                files=list(files) if files else None)


@cli.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the answer and figures.")
@click.option("--jsonl", "jsonl", type=click.Path(dir_okay=False, path_type=Path),
              help="Answer each question of a JSON-lines file ('-' for stdin); one JSON result per line.")
@click.option("--conversation", type=int, help="Continue this conversation (id).")
@_options
@pass_state
def ask(
    state: State,
    question: str | None,
    as_json: bool,
    jsonl: Path | None,
    conversation: int | None,
    model: str | None,
    max_tokens: int,
    temperature: float,
    no_docs: bool,
    sources: int | None,
    collections: tuple[str, ...],
    files: tuple[Path, ...],
) -> None:
    """Ask one question and stream the answer.

    With --file, the answer comes from those files whole ("summarise this report"),
    cited by page: archivist ask --file report.pdf "Summarise this report."
    """
    from archivist.types import GenerationOptions

    options = GenerationOptions(max_new_tokens=max_tokens, temperature=temperature)
    assistant = state.app.assistant()
    kwargs = _turn_kwargs(assistant, options, no_docs, sources, model, collections, files)
    state.app.load_model(model)
    if jsonl is not None:
        for number, query in read_queries(jsonl):
            try:
                answer = assistant.ask(query, **kwargs)
                click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
            except ArchivistError as exc:
                click.echo(json.dumps({"line": number, "error": str(exc)}))
        return
    if not question:
        raise click.UsageError("give a question, or --jsonl FILE")
    if as_json:
        turn_began = time.perf_counter()
        answer = None
        for event in assistant.stream(question, conversation_id=conversation, **kwargs):
            if event.kind == "progress":  # a pass over pinned files takes minutes: say how far, on stderr
                click.secho(f"… {printable(event.text)}", dim=True, err=True)
            elif event.kind == "done":
                answer = event.answer
        assert answer is not None  # a turn always ends with "done"
        payload = answer.to_dict()
        ttft = answer.timings.get("ttft_ms")
        # From the CLI's start (imports, plugins, model load) to the first token.
        payload["startup_ttft_ms"] = (
            None if ttft is None else round((turn_began - PROCESS_START) * 1000.0 + ttft, 1)
        )
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    _print_turn(assistant, question, conversation, kwargs)


def _print_turn(assistant: Any, question: str, conversation: int | None, kwargs: dict[str, Any]) -> Any:
    cancel = threading.Event()
    answer = None
    try:
        for event in assistant.stream(question, conversation_id=conversation, cancel=cancel, **kwargs):
            # What the model and the documents wrote is printed as text, never as
            # terminal control sequences (archivist.terminal).
            if event.kind == "text":
                click.echo(printable(event.text), nl=False)
            elif event.kind == "notice":
                click.secho(f"\n[safety] {printable(event.text)}", fg="yellow", err=True)
            elif event.kind == "progress":  # reading pinned files in parts: stderr, so stdout is the answer
                click.secho(f"… {printable(event.text)}", dim=True, err=True)
            elif event.kind == "done":
                answer = event.answer
    except KeyboardInterrupt:
        cancel.set()
        click.secho("\n[stopped]", fg="yellow", err=True)
        return None
    click.echo()
    if answer is not None:
        if answer.stats.finish_reason == "repetition":
            click.secho(REPEATING_NOTE, dim=True, err=True)
        _print_citations(answer.citations)
        if answer.parts:
            names = ", ".join(Path(f).name for f in answer.files)
            click.secho(printable(f"\n({names}: read in {answer.parts} parts)"), dim=True, err=True)
    return answer


# After an answer cut where the model began repeating itself (archivist.repetition).
REPEATING_NOTE = "(The model began repeating itself; the answer ends there.)"
# Above the sources an answer was given but does not cite (Citation.cited is False).
CONSULTED_HEADING = "Consulted, not cited in the answer:"
# Above the sources whose words the answer repeats, when it cites none (Citation.matched).
MATCHED_HEADING = "Not cited, but the answer repeats the words of:"


def _print_citations(citations: list[Any]) -> None:
    """The cited sources as ``[n] path``; then, apart, the ones the answer's sentences
    repeat (matched by Archivist), then the ones only consulted.

    Why apart: when an answer cites nothing, its best sources are still shown so it can
    be checked, but printing them as ``[n]`` would say the model rests the answer on them.
    """
    cited = [c for c in citations if c.cited]
    matched = [c for c in citations if not c.cited and getattr(c, "matched", False)]
    consulted = [c for c in citations if not c.cited and not getattr(c, "matched", False)]
    if cited:
        click.echo()
        for c in cited:
            _print_source(f"[{c.n}]", c)
    for heading, group in ((MATCHED_HEADING, matched), (CONSULTED_HEADING, consulted)):
        if group:
            click.echo()
            click.secho(heading, fg="yellow")
            for c in group:
                _print_source("-", c)


def _print_source(mark: str, citation: Any) -> None:
    where = f", page {citation.page}" if citation.page else ""
    click.secho(f"{mark} {printable(_shown_path(citation.path))}{where}", fg="cyan")
    # The passage itself, so the answer can be checked without opening the file.
    snippet = citation.snippet if len(citation.snippet) <= 160 else citation.snippet[:157].rstrip() + "..."
    click.echo(f"    {printable(snippet)}")


def _shown_path(path: str) -> str:
    """A path relative to the working folder when it is inside it (shorter to read)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@cli.command()
@_options
@pass_state
def chat(
    state: State,
    model: str | None,
    max_tokens: int,
    temperature: float,
    no_docs: bool,
    sources: int | None,
    collections: tuple[str, ...],
    files: tuple[Path, ...],
) -> None:
    """Talk with the assistant. Ctrl-C stops an answer; Ctrl-D or /exit quits.

    With --file, each conversation answers from those files (pinned to it)."""
    from archivist.collection_choice import describe_choice
    from archivist.types import GenerationOptions

    assistant = state.app.assistant()
    options = GenerationOptions(max_new_tokens=max_tokens, temperature=temperature)
    kwargs = _turn_kwargs(assistant, options, no_docs, sources, model, collections, files)
    loaded = state.app.load_model(model)
    click.secho(printable(f"Archivist {__version__} · {loaded.info.name} on {loaded.provider}"), bold=True)
    if kwargs["collections"] is not None and not no_docs:
        click.echo(printable(f"Answering from {describe_choice(kwargs['collections'])}."))
    if files:
        click.echo(printable("Answering from " + ", ".join(Path(f).name for f in files) + " (pinned)."))
    click.echo("Type a question. /new starts a new conversation, /exit quits.")
    conversation: int | None = None
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return
        if not question:
            continue
        if question in ("/exit", "/quit"):
            return
        if question == "/new":
            conversation = None
            click.echo("(new conversation)")
            continue
        click.echo("archivist> ", nl=False)
        # The files are pinned by a conversation's first turn; later turns keep its pins.
        turn = kwargs if conversation is None else {**kwargs, "files": None}
        answer = _print_turn(assistant, question, conversation, turn)
        if answer is not None:
            conversation = answer.conversation_id


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--assume-hardware", "machine", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Evaluate the model choice for a described machine (JSON, e.g. another user's doctor --json).")
@click.option("--context", "context_tokens", type=click.IntRange(256, 131072),
              help="Context length the memory check assumes (default 4096 tokens).")
@click.option("--repair", is_flag=True,
              help="Repair what is damaged, saying what was done (damaged files are moved aside, not deleted).")
@pass_state
def doctor(state: State, as_json: bool, machine: Path | None, context_tokens: int | None, repair: bool) -> None:
    """Show the hardware, the runtimes, which model would answer and why, and anything damaged."""
    from archivist.diagnosis import diagnose, render_diagnosis

    if repair:
        from archivist.diagnosis import repair_home

        if not repair_home(state.app, as_json):
            sys.exit(1)  # something is left: its lines say what to do (click returns an Exit's code unused)
        return
    report = diagnose(state.app, machine=machine, context_tokens=context_tokens)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render_diagnosis(report))


@cli.command()
@click.option("--screenshot", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the window as a PNG once it is ready, then exit (headless: QT_QPA_PLATFORM=offscreen).")
@click.option("--demo", is_flag=True, help="With --screenshot: first ask one question in a throwaway home.")
@pass_state
def gui(state: State, screenshot: Path | None, demo: bool) -> None:
    """Open the desktop window."""
    if demo and screenshot is None:
        raise click.UsageError("--demo goes with --screenshot FILE")
    from archivist.gui import run_gui

    code = run_gui(state.home, safe_mode=state.app.safe_mode, screenshot=screenshot, demo=demo, app=state.app)
    if code:
        raise click.exceptions.Exit(code)


@cli.group()
def models() -> None:
    """Manage the models Archivist can run."""


from archivist.model_commands import add_model_commands  # noqa: E402  (light: click only)

add_model_commands(models)

from archivist.library_commands import add_library_commands  # noqa: E402  (light: click only)

add_library_commands(cli)  # index, search, sources

from archivist.serve_commands import serve  # noqa: E402  (light: click only; the server is imported when it runs)
from archivist.server_commands import add_server_commands  # noqa: E402  (light: click only)

cli.add_command(serve)
add_server_commands(models)  # add-server, servers, remove-server


@cli.group()
def plugins() -> None:
    """See which plugins are loaded and any error they raised."""


def _plugin_rows(state: State) -> list[dict[str, Any]]:
    host = state.app.host
    for hook in ("register_model_backends", "register_retrievers", "register_libraries", "register_loaders",
                 "register_safety_filters"):
        host.contributions(hook)  # surfaces errors raised while registering (an object refused too)
    return [r.to_dict() | {"hooks": r.hooks(host.pm)} for r in host.records.values()]


def _shown_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` for the terminal: a plugin's metadata and errors are its author's text."""
    shown = {k: printable(v) if isinstance(v, str) else v for k, v in row.items()}
    shown["errors"] = [{k: printable(str(v)) for k, v in e.items()} for e in row["errors"]]
    return shown


def _plugin_status(row: dict[str, Any]) -> str:
    if row["disabled_by_user"]:
        return "disabled"
    return "on" if row["enabled"] else "failed"


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def plugins_list(state: State, as_json: bool) -> None:
    """List plugins with version, origin, state and the last error."""
    rows = _plugin_rows(state)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':28} {'version':10} {'origin':12} state")
    for r in map(_shown_row, rows):
        click.echo(f"{r['name']:28} {r['version']:10} {r['origin']:12} {_plugin_status(r)}")
        if r["errors"]:
            e = r["errors"][-1]
            click.echo(f"    last error ({e['where']}): {e['message']}")


@plugins.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def plugins_info(state: State, name: str, as_json: bool) -> None:
    """Everything known about one plugin: hooks it implements, state, errors."""
    row = next((r for r in _plugin_rows(state) if r["name"] == name), None)
    if row is None:
        raise ArchivistError(f"no plugin called {name!r} (see `archivist plugins list`)")
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    row = _shown_row(row)
    click.echo(f"{row['name']} {row['version']} ({row['origin']}, {_plugin_status(row)})")
    click.echo(f"module  {row['module']}")
    click.echo(f"hooks   {', '.join(row['hooks']) or 'none (not loaded)'}")
    for e in row["errors"]:
        click.echo(f"error   {e['where']}: {e['message']}")


def _set_plugin(state: State, name: str, enabled: bool, as_json: bool) -> None:
    """Edit the home's plugins.json only. The plugin is named by its installation's
    metadata, never imported or called (main() does not load plugins for this command),
    so one that hangs or crashes at import can be switched off, in safe mode too."""
    from archivist.config import read_disabled_plugins
    from archivist.plugins import known_plugins

    known = {k.name: k for k in known_plugins()}
    # A name already in plugins.json may be switched back on after its plugin is gone.
    if name not in known and not (enabled and name in read_disabled_plugins(state.app.paths)):
        raise ArchivistError(f"no plugin called {printable(repr(name))} is installed (see `archivist plugins list`)")
    if name in known and known[name].origin == "core":
        raise ArchivistError(f"{name} is part of Archivist's core and cannot be switched off")
    state.app.set_plugin_enabled(name, enabled)
    word = "enabled" if enabled else "disabled"
    if as_json:
        click.echo(json.dumps({"name": name, "enabled": enabled}))
    else:
        click.echo(f"{name} {word}; this takes effect the next time Archivist starts")


@plugins.command("enable")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def plugins_enable(state: State, name: str, as_json: bool) -> None:
    """Switch a plugin back on."""
    _set_plugin(state, name, True, as_json)


@plugins.command("disable")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def plugins_disable(state: State, name: str, as_json: bool) -> None:
    """Switch a plugin off (it stays installed, and is not imported)."""
    _set_plugin(state, name, False, as_json)


def _preparse(argv: list[str]) -> tuple[Path, bool]:
    """The global options that decide which plugins load, read before click parses."""
    return _preparse_command(argv)[:2]


def _preparse_command(argv: list[str]) -> tuple[Path, bool, list[str]]:
    """:func:`_preparse`, and the command words that follow the global options."""
    home: str | None = None
    safe = bool(os.environ.get("ARCHIVIST_SAFE_MODE"))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--home" and i + 1 < len(argv):
            home = argv[i + 1]
            i += 1
        elif arg.startswith("--home="):
            home = arg.split("=", 1)[1]
        elif arg == "--safe-mode":
            safe = True
        elif not arg.startswith("-"):
            break  # the subcommand: what follows is its own
        i += 1
    return resolve_home(home), safe, argv[i:]


# Commands that only edit the home's plugins.json: they run without loading any plugin,
# so a plugin that hangs or crashes on import or in a hook cannot stop them.
_WITHOUT_PLUGINS = (["plugins", "enable"], ["plugins", "disable"])


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _log_to_terminal(debug)  # before the plugins load: what they log is printed as text too
    try:
        home, safe, command = _preparse_command(argv)
        from archivist.application import Application

        plugins = command[:2] not in _WITHOUT_PLUGINS
        app = Application(home, safe_mode=safe, load_entry_points=plugins)
        if plugins:
            app.host.call_hook("register_commands", cli=cli, context=app.host.context)
        cli.main(args=argv, prog_name="archivist", standalone_mode=False, obj=State(app))
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ArchivistError as exc:
        if debug:
            raise
        click.secho(printable(f"error: {exc}"), fg="red", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last guard: one line, and how to learn more
        if debug:
            raise
        click.secho(
            printable(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)"),
            fg="red",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
