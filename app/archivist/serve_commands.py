"""``archivist serve``: the OpenAI-compatible API (:mod:`archivist.api`) in the foreground."""

from __future__ import annotations

import click

from archivist.terminal import printable


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8765; 0: any free one).")
@click.option("--new-key", is_flag=True, help="Make a new API key (shown once) and forget the old one.")
@click.option("--require-key", is_flag=True, default=None,
              help="Ask for the key on this machine too (always asked off loopback).")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="A web page origin allowed to call the API (CORS); repeat for more. Default: none.")
@click.option("--max-queue", type=click.IntRange(0, 1000), default=None,
              help="Requests that may wait for the model (default 8); more get 429.")
@click.option("--max-tokens", type=click.IntRange(1, 32768), default=None,
              help="The most tokens one answer may ask for (default 2048).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, new_key: bool, require_key: bool | None,
          cors_origins: tuple[str, ...], max_queue: int | None, max_tokens: int | None) -> None:
    """Serve an OpenAI-compatible API: point any OpenAI client at it.

    Chat answers are grounded in your documents, with citations (model "archivist"; add
    ":nodocs" to a model's id to ask the model alone), and screened by the safety filter
    as in the window. Listens on this machine only unless --host says otherwise; then
    every request needs the API key, made and shown once here. See docs/api.md.
    """
    from archivist.api.server import ApiServer
    from archivist.api.settings import ServeSettings

    app = ctx.find_root().obj.app
    settings = ServeSettings.from_config(
        app.config, host=host, port=port, require_key=require_key, cors_origins=cors_origins or None,
        max_queue=max_queue, max_tokens=max_tokens,
    )
    server = ApiServer(app, settings, new_key=new_key)
    s = server.settings
    click.secho(f"Archivist API on {s.url}  (Ctrl-C stops it)", bold=True)
    if not s.loopback:
        click.secho(f"listening on {s.host}: anyone who can reach this machine and has the key can ask about your "
                    "documents; the connection is not encrypted (put a TLS proxy in front for other networks)",
                    fg="yellow", err=True)
    if server.key is not None:
        click.secho("API key (shown once; only its hash is kept):", fg="green")
        click.echo(f"    {server.key}")
    elif s.needs_key:
        click.echo("API key: the one shown when it was made (`archivist serve --new-key` makes another)")
    else:
        click.echo("API key: none needed on this machine (any value works in clients that insist on one)")
    try:
        from archivist.api.turns import api_models

        models = ", ".join(m.id for m in api_models(app))
        click.echo(printable(f"models: {models}"))
    except Exception as exc:  # noqa: BLE001 - the list is a courtesy; the server still starts
        click.secho(printable(f"models: not listed ({exc})"), fg="yellow", err=True)
    if s.cors_origins:
        click.echo(f"CORS: {', '.join(s.cors_origins)}")
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn stopped cleanly, then passed Ctrl-C on
        pass
    click.echo("stopped")
