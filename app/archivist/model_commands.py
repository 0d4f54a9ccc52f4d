"""The ``archivist models`` commands and the model part of ``doctor``.

They are added to the CLI's ``models`` group by :func:`add_model_commands` (so ``cli.py``
stays a thin list of groups), and :func:`decision` gives ``doctor`` the whole model
decision as data: the hardware, the recommendation with a reason for every option, the
installed models and the order a failed load would fall back in. Every command takes
``--json`` so scripts and the GUI can read the same facts a person reads.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from archivist.application import Application
    from archivist.engine.hardware import Hardware

MODEL_SETTING = "model.id"
PROVIDER_SETTING = "model.provider"
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
    from archivist.engine.catalog import load_catalog
    from archivist.engine.hardware import probe
    from archivist.engine.installed import installed_models
    from archivist.engine.selection import fallback_plan, recommend
    from archivist.errors import ArchivistError

    assumed = hardware is not None if assumed is None else assumed
    hw = hardware if hardware is not None else probe()
    catalog = load_catalog()
    installed = installed_models(app.paths.models)
    rec = recommend(hw, catalog, context_tokens=context_tokens, installed=[m.id for m in installed])
    settings = app.settings()
    chosen_id = settings.get(MODEL_SETTING, None)
    chosen_provider = settings.get(PROVIDER_SETTING, None)
    current: dict[str, Any] = {"model": chosen_id, "provider": chosen_provider, "fallback": []}
    if not assumed:
        try:
            info = app.model_info()
            chain = fallback_plan(info, chosen_provider, app.paths.models)
            current.update(model=info.id, path=info.path,
                           fallback=[{"model": i.id, "provider": p} for i, p in chain])
            current["provider"] = chain[0][1]
        except ArchivistError as exc:
            current["problem"] = str(exc)
    return {
        "assumed_hardware": assumed,
        "hardware": hw.to_dict(),
        "recommendation": rec.to_dict(),
        "installed": [m.id for m in installed],
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
    """Attach list, recommend, install, import, use and remove to the ``models`` group.

    Commands of the same name already on the group (the first ``list`` and ``use``) are
    replaced: these are their successors.
    """
    for command in (models_list, models_recommend, models_install, models_import, models_use, models_remove):
        models.add_command(command)


def _app(ctx: click.Context) -> Application:
    return ctx.obj.app  # the CLI's State: its Application, made on first use


def _installed_state(app: Application) -> tuple[list[Any], str | None]:
    from archivist.engine.installed import installed_models

    return installed_models(app.paths.models), app.settings().get(MODEL_SETTING, None)


@click.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also list every catalog variant that can be installed.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_list(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List installed models (and, with --all, the catalog)."""
    from archivist.engine.catalog import load_catalog
    from archivist.engine.download import unfinished_downloads
    from archivist.engine.selection import gb, variant_provider

    app = _app(ctx)
    found, chosen = _installed_state(app)
    unfinished = unfinished_downloads(app.paths.models)
    installed_ids = {m.id for m in found}
    catalog = load_catalog() if show_all else None
    if as_json:
        payload: dict[str, Any] = {
            "installed": [m.to_dict() | {"chosen": chosen in (m.id, m.path), "provider": variant_provider(m)}
                          for m in found],
            "unfinished": unfinished,
        }
        if catalog is not None:
            payload["catalog"] = [v.to_dict() | {"installed": v.id in installed_ids} for v in catalog.variants()]
        click.echo(json.dumps(payload, indent=2))
        return
    if not found:
        click.echo("No model installed. Run `archivist models recommend`, then `archivist models install ID`.")
    for m in found:
        mark = "*" if chosen in (m.id, m.path) else " "
        click.echo(f"{mark} {m.id:40} {variant_provider(m) or 'cpu':5} {m.path}")
    for u in unfinished:
        click.echo(f"  {u['id']:40} unfinished download ({gb(u['bytes'])} so far): `archivist models install {u['id']}` resumes it")
    if catalog is not None:
        click.echo("\nCatalog:")
        for m in catalog.models:
            for v in m.variants:
                state = "installed" if v.id in installed_ids else ("built offline" if v.source != "hub" else gb(v.download_bytes))
                click.echo(f"  {v.id:40} {v.label:14} {state:>10}  {m.licence}")


@click.command("recommend")
@click.option("--assume-hardware", "machine", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Evaluate a described machine (JSON) instead of this one.")
@click.option("--context", "context_tokens", type=click.IntRange(256, 131072),
              help="Context length the memory check assumes (default 4096 tokens).")
@click.option("--provider", type=PROVIDERS, help="Only consider this provider.")
@click.option("--model", help="Only consider this catalog model or variant.")
@click.option("--json", "as_json", is_flag=True)
def models_recommend(machine: Path | None, context_tokens: int | None, provider: str | None,
                     model: str | None, as_json: bool) -> None:
    """Say which model this machine should run, the alternatives, and why."""
    from archivist.engine.catalog import load_catalog
    from archivist.engine.hardware import probe
    from archivist.engine.selection import recommend

    hw = read_hardware(machine) if machine else probe()
    rec = recommend(hw, load_catalog(), context_tokens=context_tokens, provider=provider, model=model)
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
    from archivist.engine.catalog import UnknownModel, load_catalog
    from archivist.engine.download import DownloadCancelled, install_variant

    app = _app(ctx)
    catalog = load_catalog()
    try:
        variant = catalog.variant(model_id)
    except UnknownModel:
        from archivist.engine.hardware import probe
        from archivist.engine.selection import recommend

        catalog.model(model_id)  # raises the clear "no catalog model" error
        rec = recommend(probe(), catalog, model=model_id)
        if rec.choice is None:
            raise
        variant = catalog.variant(rec.choice.variant_id)
        if not as_json:
            click.echo(f"{model_id}: installing {variant.id} ({rec.summary})")
    cancel = threading.Event()
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
        folder = install_variant(variant, app.paths.models, revision=revision, progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise DownloadCancelled(f"download of {variant.id} interrupted; `archivist models install {variant.id}` resumes it") from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if make_current:
        app.settings().set(MODEL_SETTING, variant.id)
        app.settings().set(PROVIDER_SETTING, variant.provider)
    if as_json:
        click.echo(json.dumps({"installed": variant.id, "path": str(folder), "provider": variant.provider,
                               "current": make_current}, indent=2))
    else:
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        click.echo(f"installed {variant.id} ({size / 2**20:.1f} MB) in {folder}")
        if not make_current:
            click.echo(f"use it with: archivist models use {variant.id}")


MODEL_ID_PATTERN = r"[a-z0-9][a-z0-9._-]*"
"""Ids of imported models: folder names that are safe on every OS and never hidden."""


def model_id_for(gguf: Path) -> str:
    """The id a GGUF is imported under by default: its file name, lower-cased and slugged
    (``Phi-3-mini-4k-instruct-q4.gguf`` -> ``phi-3-mini-4k-instruct-q4``)."""
    import re

    return re.sub(r"[^a-z0-9.]+", "-", gguf.stem.lower()).strip("-.") or "imported-model"


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
    import re
    import time

    from archivist.errors import ArchivistError
    from archivist_models.gguf import GraphOptions, convert, read_manifest

    app = _app(ctx)
    model_id = model_id or model_id_for(gguf)
    if not re.fullmatch(MODEL_ID_PATTERN, model_id):
        raise ArchivistError(f"{model_id!r} cannot be a model id: use lower-case letters, digits, '.', '_' and '-'")
    target = app.paths.models / model_id
    if target.exists() and not replace:
        raise ArchivistError(f"a model called {model_id} is already installed in {target}: "
                             "choose another --id, or --replace it")

    def progress(stage: str, fraction: float) -> None:
        if not as_json:
            click.echo(f"\r[{fraction * 100:5.1f}%] {stage:<40}", nl=False, err=True)

    started = time.monotonic()
    try:
        folder = convert(gguf, target, progress=progress, model_id=model_id, name=name,
                         options=GraphOptions.exact() if exact else GraphOptions.fast())
    finally:
        if not as_json:
            click.echo("", err=True)
    manifest = read_manifest(folder) or {}
    if make_current:
        app.settings().set(MODEL_SETTING, model_id)
        app.settings().delete(PROVIDER_SETTING)
    if as_json:
        click.echo(json.dumps({"imported": model_id, "path": str(folder), "name": manifest.get("name"),
                               "architecture": manifest.get("architecture"),
                               "context_length": manifest.get("context_length"),
                               "seconds": round(time.monotonic() - started, 1), "current": make_current}, indent=2))
        return
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    click.echo(f"imported {manifest.get('name') or model_id} ({manifest.get('architecture')}, "
               f"{size / 2**20:.1f} MB) as {model_id} in {folder}")
    if not make_current:
        click.echo(f"use it with: archivist models use {model_id}")


@click.command("use")
@click.argument("model")
@click.option("--provider", type=PROVIDERS, help="Run it on this provider (default: the one it was built for).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_use(ctx: click.Context, model: str, provider: str | None, as_json: bool) -> None:
    """Choose the model questions use (an installed id or a model folder), overriding the recommendation."""
    from archivist.engine.catalog import UnknownModel, load_catalog
    from archivist.engine.installed import find_model
    from archivist.errors import ModelNotFound

    app = _app(ctx)
    try:
        info = find_model(app.paths.models, model)
    except ModelNotFound:
        try:
            load_catalog().variant(model)
        except UnknownModel:
            raise ModelNotFound(f"no installed model is called {model!r} (see `archivist models list`)") from None
        raise ModelNotFound(f"{model} is in the catalog but not installed: `archivist models install {model}`") from None
    settings = app.settings()
    settings.set(MODEL_SETTING, info.path if os.sep in model else info.id)
    if provider:
        settings.set(PROVIDER_SETTING, provider)
    else:
        settings.delete(PROVIDER_SETTING)
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
    from archivist.engine.download import remove_model

    app = _app(ctx)
    folder = remove_model(app.paths.models, model_id)
    settings = app.settings()
    was_current = settings.get(MODEL_SETTING, None) in (model_id, str(folder))
    if was_current:
        settings.delete(MODEL_SETTING)
        settings.delete(PROVIDER_SETTING)
    if as_json:
        click.echo(json.dumps({"removed": model_id, "path": str(folder), "was_current": was_current}, indent=2))
    else:
        click.echo(f"removed {model_id}" + (" (questions will use the default model again)" if was_current else ""))
