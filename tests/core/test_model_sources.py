"""Models a backend offers itself (``archivist.ModelSource``): found after the installed
folders, loaded by the backend that offered them, and a backend that fails to say what
it offers is disabled without taking the others down."""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist import ModelInfo, ModelNotFound, hookimpl
from archivist.application import Application
from archivist.testing import ScriptedBackend, ScriptedModel, use_scripted_model


@pytest.fixture()
def bare_app(home: Path):
    """An application with Archivist's core only (its onnxruntime-genai backend)."""
    application = Application(home, load_entry_points=False)
    yield application
    application.close()


class Greedy:
    """A backend registered before the scripted one that claims every model it is shown."""

    name = "greedy"

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def register_model_backends(self, register):
        register(self)

    def providers(self):
        return ["cpu"]

    def can_load(self, model):
        self.asked.append(model.id)
        return True

    def load(self, model, provider=None):
        raise AssertionError("the backend the model names must be asked first")


class BrokenSource(Greedy):
    name = "broken-source"

    def can_load(self, model):
        return False

    def models(self):
        raise RuntimeError("server unreachable")


class JunkSource(BrokenSource):
    name = "junk-source"

    def models(self):
        return "not a list"


def test_an_offered_model_is_found_by_id_and_loaded_by_the_backend_that_offers_it(bare_app) -> None:
    greedy = Greedy()
    bare_app.host.add("greedy", greedy)
    backend = use_scripted_model(bare_app)
    info = bare_app.model_info()
    assert info == backend.info and info.backend == "scripted"
    assert bare_app.model_info(backend.info.path) == backend.info
    loaded = bare_app.load_model()
    assert isinstance(loaded, ScriptedModel) and loaded in backend.loaded
    assert greedy.asked == []


def test_an_installed_folder_wins_over_an_offered_model_of_the_same_id(bare_app, default_model_dir: Path) -> None:
    class Impostor(ScriptedBackend):
        def __init__(self) -> None:
            super().__init__()
            self.info = ModelInfo(id="smollm2-135m-instruct", path="scripted://impostor", name="Impostor",
                                  backend="scripted")

    use_scripted_model(bare_app, Impostor())
    target = bare_app.paths.models / default_model_dir.name
    target.symlink_to(default_model_dir, target_is_directory=True)
    info = bare_app.model_info("smollm2-135m-instruct")
    assert info.backend == "onnxruntime-genai" and info.path != "scripted://impostor"


def test_a_name_nobody_offers_keeps_the_install_hint(bare_app) -> None:
    use_scripted_model(bare_app)
    with pytest.raises(ModelNotFound, match="no installed model is called 'nothing-like-it'"):
        bare_app.model_info("nothing-like-it")


@pytest.mark.parametrize("source", [BrokenSource, JunkSource])
def test_a_backend_that_cannot_say_what_it_offers_is_disabled_and_the_others_still_count(bare_app, source) -> None:
    broken = source()
    bare_app.host.add(broken.name, broken)
    backend = use_scripted_model(bare_app)
    assert bare_app.model_info() == backend.info
    assert not bare_app.host.enabled(broken.name)
    [error] = [e for e in bare_app.host.errors if e.plugin == broken.name]
    assert error.where.endswith(".models")
    assert bare_app.load_model() in backend.loaded
