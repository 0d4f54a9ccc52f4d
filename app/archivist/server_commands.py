"""``archivist models add-server | servers | remove-server``: models served elsewhere.

They render the core's :class:`~archivist.model_servers.ModelServers` (``app.servers``),
which drives whichever enabled backend keeps servers (the built-in ``remote`` plugin), so
the window's Models page and these commands add the same servers.
"""

from __future__ import annotations

import json
from typing import Any

import click

from archivist.terminal import printable


def add_server_commands(models: click.Group) -> None:
    models.add_command(add_server)
    models.add_command(list_servers)
    models.add_command(remove_server)


def _app(ctx: click.Context) -> Any:
    return ctx.find_root().obj.app


@click.command("add-server")
@click.argument("name")
@click.argument("url")
@click.option("--model", help="The server's model to use (default: its only one).")
@click.option("--key-prompt", is_flag=True, help="Ask for the server's API key (kept in the system keychain).")
@click.option("--key-env", metavar="VAR", help="Read the key from this environment variable instead (nothing kept).")
@click.option("--context", "context_length", type=click.IntRange(256, 10_000_000),
              help="The model's context in tokens, when the server does not say (default 4096).")
@click.option("--use", is_flag=True, help="Also make it the model questions use.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def add_server(ctx: click.Context, name: str, url: str, model: str | None, key_prompt: bool, key_env: str | None,
               context_length: int | None, use: bool, as_json: bool) -> None:
    """Add a model served elsewhere (vLLM, llama.cpp's server, Ollama, LM Studio, another
    Archivist): NAME becomes a model id like any other, URL is its OpenAI API
    (http://gpu-box:8000/v1). Only the packed prompt is sent there."""
    from archivist.model_servers import PRIVACY_NOTE

    key = click.prompt("API key", hide_input=True) if key_prompt else None
    app = _app(ctx)
    info = app.servers.add(name, url, model, key, key_env, context_length)
    if use:
        app.models.use(info.id)
    if as_json:
        click.echo(json.dumps(info.to_dict()))
        return
    click.echo(printable(f"added {info.id}: {info.metadata.get('model')} at {info.metadata.get('url')} "
                         f"({info.context_length} tokens of context)"))
    if str(info.metadata.get("url", "")).startswith("http://"):
        click.secho("note: the connection is not encrypted (http); on another network use https", fg="yellow")
    click.echo(f"use it with `archivist ask --model {info.id} ...`, or `archivist models use {info.id}`"
               if not use else f"questions now use {info.id}")
    click.echo(PRIVACY_NOTE)


@click.command("servers")
@click.option("--check", is_flag=True, help="Also ask each server whether it answers, and what models it has.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_servers(ctx: click.Context, check: bool, as_json: bool) -> None:
    """The model servers added, and with --check whether they answer."""
    app = _app(ctx)
    servers = app.servers
    if check:
        states = servers.check()
        if as_json:
            click.echo(json.dumps(states, indent=2))
            return
        if not states:
            click.echo("no model servers added (`archivist models add-server NAME URL`)")
        for s in states:
            line = "reachable" if s["reachable"] else "NOT reachable"
            click.echo(printable(f"{s['name']:20} {s['url']}  {line}"))
            if s["models"]:
                click.echo(printable(f"{'':20} models: {', '.join(s['models'])}"))
            if s["error"]:
                click.echo(printable(f"{'':20} {s['error']}"))
        return
    infos = servers.models()
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    if not infos:
        click.echo("no model servers added (`archivist models add-server NAME URL`)")
    for i in infos:
        key = {"keyring": "key in keychain", "env": "key from environment", "none": "no key"}.get(
            str(i.metadata.get("key")), "")
        click.echo(printable(f"{i.id:20} {i.metadata.get('model')} at {i.metadata.get('url')} · {key}"))


@click.command("remove-server")
@click.argument("name")
@click.pass_context
def remove_server(ctx: click.Context, name: str) -> None:
    """Forget a model server and its key."""
    app = _app(ctx)
    app.servers.remove(name)
    click.echo(f"removed {name}")
    if app.models.chosen() == name:
        click.secho(f"questions used {name}: choose another model with `archivist models use ID`", fg="yellow")
