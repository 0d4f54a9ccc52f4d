"""The models commands and doctor's decision, driven through click like a user would."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner
from conftest import MACHINES, machine

from archivist.model_commands import add_model_commands, decision, read_hardware, render_decision

VARIANT = "phi-3-mini-4k-instruct-cpu-int4"


@pytest.fixture()
def models_group() -> click.Group:
    group = click.Group("models")
    add_model_commands(group)
    return group


@pytest.fixture()
def invoke(models_group, home: Path):
    """Run a models command the way the CLI does: ``ctx.obj.app`` is the Application."""
    from archivist.application import Application

    runner = CliRunner()
    apps: list[Application] = []

    def run(*args: str):
        app = Application(home, safe_mode=True)
        apps.append(app)
        return runner.invoke(models_group, list(args), obj=SimpleNamespace(app=app), catch_exceptions=False)

    yield run
    for app in apps:
        app.close()


def test_the_group_gets_every_command(models_group) -> None:
    assert set(models_group.commands) == {"list", "recommend", "install", "import", "use", "remove", "build-default"}


def test_recommend_for_a_described_machine(invoke) -> None:
    result = invoke("recommend", "--assume-hardware", str(MACHINES / "linux-nvidia-rtx3060-12gb-cpu-build.json"), "--json")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.output)
    assert rec["choice"]["variant_id"] == "phi-3.5-mini-instruct-cpu-int4"
    assert "pip install onnxruntime-genai-cuda" in rec["advice"][0]
    human = invoke("recommend", "--assume-hardware", str(MACHINES / "win-amd-rx6600-8gb.json"))
    assert "Recommended: phi-3.5-mini-instruct-dml-int4" in human.output
    assert "AMD Radeon RX 6600 8 GB" in human.output


def test_install_list_use_remove_against_the_local_hub(hub, invoke, home: Path) -> None:
    result = invoke("install", VARIANT, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["installed"] == VARIANT

    listed = json.loads(invoke("list", "--json", "--all").output)
    assert [m["id"] for m in listed["installed"]] == [VARIANT]
    assert listed["installed"][0]["provider"] == "cpu" and listed["unfinished"] == []
    assert any(v["id"] == VARIANT and v["installed"] for v in listed["catalog"])

    used = invoke("use", VARIANT, "--provider", "cpu")
    assert used.exit_code == 0 and "questions now use" in used.output
    listed = json.loads(invoke("list", "--json").output)
    assert listed["installed"][0]["chosen"]

    removed = json.loads(invoke("remove", VARIANT, "--json").output)
    assert removed["was_current"] and not (home / "models" / VARIANT).exists()


def test_install_shows_a_progress_bar(hub, invoke) -> None:
    result = invoke("install", VARIANT)
    assert result.exit_code == 0, result.output
    # Not a terminal here, so click's bar prints its label once instead of redrawing.
    assert result.output.splitlines()[0] == VARIANT
    assert f"installed {VARIANT} (24.0 MB)" in result.output


def test_use_of_a_catalog_variant_not_installed_says_how_to_install(invoke) -> None:
    from archivist.errors import ModelNotFound

    with pytest.raises(ModelNotFound, match=f"archivist models install {VARIANT}"):
        invoke("use", VARIANT)


def test_doctor_decision_for_a_described_and_for_this_machine(home: Path) -> None:
    from archivist.application import Application

    app = Application(home, safe_mode=True)
    try:
        described = decision(app, read_hardware(MACHINES / "win-nvidia-rtx4070-12gb-cuda.json"))
        assert described["assumed_hardware"]
        assert described["recommendation"]["choice"]["variant_id"] == "phi-3-medium-128k-instruct-cuda-int4"
        lines = render_decision(described)
        assert lines[0].startswith("machine     (described)")
        assert any(line.startswith("reason      NVIDIA GeForce RTX 4070 12 GB") for line in lines)
        here = decision(app)
        assert not here["assumed_hardware"] and here["hardware"]["genai_package"]
        assert "problem" in here["current"] or here["current"]["fallback"]
        json.dumps(here)  # doctor --json prints it as is
    finally:
        app.close()


def test_a_doctor_report_is_accepted_as_a_machine_description(tmp_path: Path) -> None:
    report = {"archivist": "0.1.0", "hardware": machine("mac-m1-8gb").to_dict()}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert read_hardware(path).apple_silicon
