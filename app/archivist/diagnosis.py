"""``archivist doctor``: everything that decides how questions will run, in one report,
and whatever in the home is damaged (:mod:`archivist.damage`; ``--repair`` repairs it).

When something goes wrong on a user's machine, this is what they paste into a bug
report, so it states facts and the reason for each choice rather than just the choice.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archivist import __version__
from archivist.damage import find_problems
from archivist.errors import ArchivistError

if TYPE_CHECKING:
    from archivist.application import Application


def diagnose(
    app: Application, machine: Path | None = None, context_tokens: int | None = None
) -> dict[str, Any]:
    """Collect the report as plain data (the JSON form of ``doctor``).

    ``machine`` evaluates the model choice for a described machine instead of this one.
    """
    from archivist.engine.hardware import probe
    from archivist.engine.installed import installed_models
    from archivist.model_commands import decision as model_decision
    from archivist.model_commands import read_hardware

    hw = read_hardware(machine) if machine else probe(full=True)
    report: dict[str, Any] = {
        "archivist": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "home": str(app.paths.home),
        "hardware": hw.to_dict(),
        "providers": hw.genai_providers,
        "models": [m.to_dict() for m in installed_models(app.paths.models)],
        "plugins": [],
    }
    decision: dict[str, Any] = {}
    try:
        info = app.model_info()
        provider = hw.genai_providers[0] if hw.genai_providers else None
        decision = {
            "model": info.id,
            "path": info.path,
            "backend": "onnxruntime-genai",
            "provider": provider,
            "why": _why(hw.to_dict(), provider),
        }
    except ArchivistError as exc:
        decision = {"model": None, "why": str(exc)}
    report["decision"] = decision
    try:
        report["model_decision"] = model_decision(
            app, hw, assumed=machine is not None, context_tokens=context_tokens
        )
    except ArchivistError as exc:  # a damaged home still gets its report (and "problems" says why)
        report["model_decision"] = {"error": str(exc)}
    host = app.host
    host.model_backends(), host.retrievers(), host.libraries(), host.loaders(), host.safety_filters()
    report["problems"] = [p.to_dict() for p in find_problems(app)]
    report["plugins"] = [r.to_dict() for r in host.records.values()]
    # Model servers the user added: each asked now whether it answers, and what it has.
    report["servers"] = app.servers.check()
    return report


def render_problems(problems: list[dict[str, Any]]) -> list[str]:
    """The ``damaged`` lines of the report: one per problem, then what to run."""
    if not problems:
        return ["damaged     nothing found"]
    lines = [f"damaged     {p['problem']}" for p in problems]
    if any(p["repairable"] for p in problems):
        lines.append("repair      run `archivist doctor --repair`: it says what it does, and moves what is "
                     "yours aside instead of deleting it")
    return lines


def render_servers(servers: list[dict[str, Any]]) -> list[str]:
    """The ``server`` lines: each model server added, whether it answered, its models
    (what a server says is its own text: printed as text, never as terminal controls)."""
    from archivist.terminal import printable

    lines = []
    for s in servers:
        state = "reachable" if s.get("reachable") else "NOT reachable"
        lines.append(f"server      {s.get('name')} {s.get('url')} ({s.get('model')}): {state}")
        if s.get("models"):
            lines.append(f"            models there: {', '.join(s['models'])}")
        if s.get("error"):
            lines.append(f"            {s['error']}")
    return [printable(line) for line in lines]


def _why(hw: dict[str, Any], provider: str | None) -> str:
    nvidia = [g for g in hw.get("gpus", []) if g.get("vendor") == "NVIDIA"]
    if provider == "cuda":
        return f"NVIDIA GPU found ({nvidia[0]['name']}) and the CUDA build is installed" if nvidia else "the CUDA build reports a usable GPU"
    if provider == "dml":
        return "DirectML build installed on Windows with a DirectX 12 GPU"
    if nvidia:
        return (
            f"NVIDIA GPU found ({nvidia[0]['name']}) but the CPU build of onnxruntime-genai is "
            "installed: `pip install 'archivist[cuda]'` after removing onnxruntime-genai would use it"
        )
    return "no supported GPU runtime: the CPU runs the int4 model"


def render_diagnosis(report: dict[str, Any]) -> str:
    """The human form of the report: short aligned lines."""
    hw = report["hardware"]
    ram = (
        f"{hw['ram_total_mb'] / 1024:.1f} GB total"
        + (f", {hw['ram_free_mb'] / 1024:.1f} GB free" if hw.get("ram_free_mb") else "")
        if hw.get("ram_total_mb")
        else "unknown"
    )
    gpus = ", ".join(f"{g['name']} ({g['memory_mb'] or '?'} MB)" for g in hw["gpus"]) or "none seen"
    lines = [
        f"Archivist {report['archivist']} · Python {report['python']} · {report['platform']}",
        f"home        {report['home']}",
        f"cpu         {hw['cpu']} · {hw['cores']} cores · {' '.join(hw['cpu_features']) or 'no SIMD flags seen'}",
        f"memory      {ram}",
        f"gpus        {gpus}",
        f"runtime     {hw.get('genai_package') or 'onnxruntime-genai missing'} · providers: {', '.join(report['providers']) or 'none'}",
        f"models      {', '.join(m['id'] for m in report['models']) or 'none installed'}",
    ]
    d = report["decision"]
    if d.get("model"):
        lines.append(f"would use   {d['model']} on {d['provider']} ({d['backend']})")
    lines.append(f"because     {d['why']}")
    from archivist.model_commands import render_decision

    if "error" in report["model_decision"]:
        lines.append(f"current     {report['model_decision']['error']}")
    else:
        lines.extend(render_decision(report["model_decision"]))
    for p in report["plugins"]:
        state = "on" if p["enabled"] else "OFF"
        lines.append(f"plugin      {p['name']} {p['version']} ({p['origin']}, {state})")
        for e in p["errors"]:
            lines.append(f"            error in {e['where']}: {e['message']}")
    for problem in hw.get("problems", []):
        lines.append(f"note        {problem}")
    lines.append(f"probe took  {hw['probe_ms']} ms")
    lines.extend(render_problems(report["problems"]))
    lines.extend(render_servers(report.get("servers", [])))
    return "\n".join(lines)


def repair_home(app: Application, as_json: bool = False) -> bool:
    """``archivist doctor --repair``: repair, print what was done and what is left (JSON:
    ``{"repaired": [lines], "problems": [what is left]}``); whether nothing is left."""
    import json

    import click

    from archivist.damage import repair

    done, left = repair(app)
    if as_json:
        click.echo(json.dumps({"repaired": done, "problems": [p.to_dict() for p in left]}, indent=2))
        return not left
    if not done and not left:
        click.echo("nothing to repair: no damage found")
    for line in done:
        click.echo(f"repaired    {line}")
    for problem in left:
        click.echo(f"left        {problem.text}")
    return not left
