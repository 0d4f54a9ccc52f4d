"""The model service (``app.models``): one set of names, and the CLI acting through it.

``archivist models`` runs through click in an Application of its own, as a second process
would; the service is asked in another Application over the same home. What one does,
the other sees, because both go through the same service and the same setting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from archivist.application import Application
from archivist.errors import ArchivistError, ModelNotFound
from archivist.model_commands import add_model_commands
from archivist.model_service import (
    MODEL_READY,
    MODEL_SETTING,
    MODEL_SHARE,
    PROVIDER_SETTING,
    ModelExists,
    ModelInUse,
    ModelService,
)

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"


def source_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py") if ".cache" not in p.parts]


def test_one_module_names_the_model_settings() -> None:
    named = re.compile(r"""["'](model\.id|model\.provider)["']""")
    places = {p.relative_to(ROOT).as_posix() for p in source_files("app", "plugins", "models", "installer", "bench")
              if named.search(p.read_text(encoding="utf-8"))}
    assert places == {"app/archivist/model_service.py"}
    assert (MODEL_SETTING, PROVIDER_SETTING) == ("model.id", "model.provider")


def test_one_module_names_the_encoder_folder() -> None:
    from archivist_models.embedder import EMBEDDER_DIR

    places = {p.relative_to(ROOT).as_posix() for p in source_files("app", "plugins", "models", "installer")
              if EMBEDDER_DIR in p.read_text(encoding="utf-8")}
    assert places == {"models/embedder.py"}


def make_model(models: Path, model_id: str, provider: str | None = None) -> Path:
    """A folder the installed-models scan accepts (not loadable: nothing here loads it)."""
    folder = models / model_id
    folder.mkdir(parents=True)
    (folder / "genai_config.json").write_text(json.dumps({"model": {"context_length": 4096}}))
    if provider is not None:
        (folder / "archivist.json").write_text(json.dumps({"id": model_id, "provider": provider}))
    return folder


@pytest.fixture()
def cli(home: Path):
    """``archivist models ...`` in an Application of its own; returns (exit code, output)."""
    group = click.Group("models")
    add_model_commands(group)
    runner = CliRunner()

    def run(*args: str) -> click.testing.Result:
        app = Application(home, safe_mode=True)
        try:
            return runner.invoke(group, list(args), obj=SimpleNamespace(app=app), catch_exceptions=False)
        finally:
            app.close()

    return run


@pytest.fixture()
def service_app(home: Path):
    app = Application(home, safe_mode=True)
    yield app
    app.close()


def listed(cli) -> dict[str, bool]:
    result = cli("list", "--json")
    assert result.exit_code == 0, result.output
    return {m["id"]: m["chosen"] for m in json.loads(result.stdout)["installed"]}


def test_what_the_service_does_the_cli_lists_and_the_other_way_round(home: Path, cli, service_app) -> None:
    models = home / "models"
    make_model(models, "first-model", "cpu")
    make_model(models, "second-model")
    service = service_app.models

    assert service.use("second-model").id == "second-model"
    assert listed(cli) == {"first-model": False, "second-model": True}

    assert cli("use", "first-model", "--provider", "cpu").exit_code == 0
    state = service.state(load_order=False)
    assert (state.chosen, state.chosen_provider) == ("first-model", "cpu")
    assert [(m.id, m.chosen, m.runs_on) for m in state.installed] == [
        ("first-model", True, "cpu"), ("second-model", False, "cpu")]
    assert state.current is not None and state.current.id == "first-model"

    removed = json.loads(cli("remove", "first-model", "--json").stdout)
    assert removed["was_current"]
    state = service.state(load_order=False)
    assert state.installed_ids() == ["second-model"] and state.chosen is None and state.chosen_provider is None

    gone = service.remove("second-model")
    assert gone.path == models / "second-model" and not gone.was_current
    assert listed(cli) == {}


def test_use_names_what_to_do_when_the_model_is_missing(service_app) -> None:
    with pytest.raises(ModelNotFound, match="archivist models install phi-3-mini-4k-instruct-cpu-int4"):
        service_app.models.use("phi-3-mini-4k-instruct-cpu-int4")
    with pytest.raises(ModelNotFound, match="no installed model is called 'nothing-here'"):
        service_app.models.use("nothing-here")
    assert service_app.models.chosen() is None


def test_the_model_answering_now_cannot_be_removed(home: Path) -> None:
    from archivist.testing import use_scripted_model

    app = Application(home)
    try:
        backend = use_scripted_model(app)
        app.load_model()
        assert app.loaded_model is not None and app.loaded_model.info.id == backend.info.id
        with pytest.raises(ModelInUse, match="is answering now: choose another model first"):
            app.models.remove(backend.info.id)
        assert app.models.chosen() == backend.info.id
    finally:
        app.close()
    assert app.loaded_model is None


def test_imports_are_refused_before_any_work(home: Path, service_app) -> None:
    make_model(home / "models", "taken")
    service = service_app.models
    assert service.import_target(Path("/x/Phi-3-mini-4k-instruct-Q4_K_M.gguf")) == "phi-3-mini-4k-instruct-q4-k-m"
    with pytest.raises(ModelExists, match="choose another --id, or --replace it") as refused:
        service.import_target(Path("taken.gguf"))
    assert refused.value.model_id == "taken"
    assert service.import_target(Path("taken.gguf"), replace=True) == "taken"
    with pytest.raises(ArchivistError, match="cannot be a model id"):
        service.import_target(Path("a.gguf"), "../escape")


def test_a_service_without_an_application_builds_but_does_not_choose(tmp_path: Path) -> None:
    service = ModelService(tmp_path / "models")
    make_model(tmp_path / "models", "loose")
    assert [m.id for m in service.installed()] == ["loose"]
    with pytest.raises(ArchivistError, match="no application"):
        service.use("loose")


@pytest.fixture()
def built_home(home: Path, default_model_dir: Path) -> Path:
    """``home`` where build-default has nothing left to do: both built-in models are the
    test cache's (as links), so the build only checks them."""
    from archivist_models.default import MODEL_ID
    from archivist_models.embedder import EMBEDDER_DIR, RECIPE_VERSION, build_embedder

    encoder = build_embedder(CACHE / "test-models" / f"{EMBEDDER_DIR}-r{RECIPE_VERSION}", CACHE / "wheels")
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / MODEL_ID).symlink_to(default_model_dir, target_is_directory=True)
    (models / EMBEDDER_DIR).symlink_to(encoder, target_is_directory=True)
    return home


def test_build_default_reports_the_chat_model_then_the_encoder(built_home: Path, cli) -> None:
    from archivist_models.embedder import EMBEDDER_DIR

    stages: list[tuple[str, float]] = []
    built = ModelService(built_home / "models").build_default(lambda s, f: stages.append((s, f)), CACHE / "wheels")
    assert built.encoder == built_home / "models" / EMBEDDER_DIR
    assert stages[-1] == (f"{MODEL_READY}: {built.model}", MODEL_SHARE)
    assert all(f <= MODEL_SHARE for _, f in stages)

    result = cli("build-default", "--cache-dir", str(CACHE / "wheels"))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[-2] == f"{MODEL_READY}: {built.model}"
    assert lines[-1] == f"search encoder ready: {built.encoder}"
    assert "[100.0%] up to date" in result.stderr
