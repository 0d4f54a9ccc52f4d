"""The plugin contract is all in the contract: what a registered object must be, its time
limits per Protocol method, the optional capabilities, and the context plugins receive."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import archivist
from archivist import (
    Closable,
    Countable,
    Document,
    DocumentLoader,
    ModelBackend,
    ModelInfo,
    PluginFailure,
    Retriever,
    hookimpl,
)
from archivist.application import Application
from archivist.context import PluginContext
from archivist.contract import DEFAULT_TIMEOUTS, resolve_timeouts
from archivist.plugins import Contribution, PluginHost, api_compatible


def host(tmp_path: Path, **kwargs) -> PluginHost:
    return PluginHost(PluginContext(home=tmp_path), load_entry_points=False, **kwargs)


class Registers:
    """A plugin registering ``objects`` through ``hook``."""

    def __init__(self, hook: str, *objects: object) -> None:
        def implementation(register) -> None:
            for obj in objects:
                register(obj)

        setattr(self, hook, hookimpl(specname=hook)(implementation))


class Notes:
    name = "notes"

    def search(self, query: str, k: int = 5) -> list:
        return []


class CountedNotes(Notes):
    def __init__(self) -> None:
        self.closed = 0

    def count(self) -> int:
        return 3

    def close(self) -> None:
        self.closed += 1


class NoSearch:
    name = "no-search"


class SearchIsNoMethod:
    name = "not-callable"
    search = "nope"


class NoExtensions:
    name = "txt"

    def load(self, path: Path) -> Document:
        raise AssertionError("never called")


# --- what a registered object must be ---------------------------------------------------


@pytest.mark.parametrize("obj, lacks", [
    (NoSearch(), "it lacks search()"),
    (SearchIsNoMethod(), "it lacks search()"),
    (object(), "it lacks name, search()"),
])
def test_an_object_that_is_no_retriever_disables_its_plugin_at_registration(tmp_path: Path, obj, lacks) -> None:
    h = host(tmp_path)
    h.add("bad", Registers("register_retrievers", Notes(), obj))
    h.add("good", Registers("register_retrievers", Notes()))
    assert [c.plugin for c in h.retrievers()] == ["good"]  # the bad plugin's valid one goes too
    assert not h.enabled("bad")
    [error] = h.errors
    assert error.plugin == "bad" and error.where == "register_retrievers"
    assert f"registered through register_retrievers is not an archivist.Retriever: {lacks}" in error.message


def test_a_loader_without_extensions_is_refused_naming_the_attribute(tmp_path: Path) -> None:
    h = host(tmp_path)
    h.add("bad", Registers("register_loaders", NoExtensions()))
    assert h.loaders() == []
    assert "NoExtensions registered through register_loaders is not an archivist.DocumentLoader: " \
           "it lacks extensions" in h.errors[0].message


def test_contributions_carry_the_protocol_they_were_registered_as(tmp_path: Path) -> None:
    h = PluginHost(PluginContext(home=tmp_path))  # the built-ins, as a user has them
    h.add("notes", Registers("register_retrievers", CountedNotes()))
    for hook, protocol in [(h.model_backends, ModelBackend), (h.retrievers, Retriever), (h.loaders, DocumentLoader)]:
        found = hook()
        assert found and all(c.protocol is protocol and isinstance(c.obj, protocol) for c in found)
    assert all(c.protocol is archivist.SafetyFilter for c in h.safety_filters())
    assert all(c.protocol is archivist.Library for c in h.libraries())


# --- time limits per Protocol method ----------------------------------------------------


class SlowLoader:
    name = "slow"
    extensions = (".slow",)

    def load(self, path: Path) -> Document:
        time.sleep(0.6)
        return Document(str(path), ())


class SlowBackend:
    name = "slow-backend"

    def providers(self) -> list[str]:
        return ["cpu"]

    def can_load(self, model: ModelInfo) -> bool:
        return True

    def load(self, model: ModelInfo, provider: str | None = None) -> object:
        time.sleep(0.6)
        return "a model, late but loaded"


def test_a_slow_document_load_is_given_up_but_a_slow_model_load_is_not(tmp_path: Path) -> None:
    """Both methods are called ``load``; before API 1.1 they shared one limit."""
    h = host(tmp_path, timeouts={"DocumentLoader.load": 0.2})
    h.add("loader", Registers("register_loaders", SlowLoader()))
    h.add("backend", Registers("register_model_backends", SlowBackend()))
    [loader], [backend] = h.loaders(), [b for b in h.model_backends() if b.plugin == "backend"]
    assert h.time_limit(loader, "load") == 0.2
    assert h.time_limit(backend, "load") is None
    assert h.run(backend, "load", None) == "a model, late but loaded"
    with pytest.raises(PluginFailure, match=r"SlowLoader\.load.*gave up after 0\.2 s"):
        h.run(loader, "load", tmp_path / "a.slow")
    assert not h.enabled("loader") and h.enabled("backend")


def test_a_capability_method_is_limited_by_the_capability_protocol(tmp_path: Path) -> None:
    h = host(tmp_path, timeouts={"Countable.count": 1.5, "Library.count": 7})
    h.add("notes", Registers("register_retrievers", CountedNotes()))
    [notes] = h.retrievers()
    assert isinstance(notes.obj, Countable) and isinstance(notes.obj, Closable)
    assert h.time_limit(notes, "count") == 1.5
    assert h.time_limit(notes, "search") == DEFAULT_TIMEOUTS["Retriever.search"]
    assert h.time_limit(notes, "close") is None
    assert h.time_limit(notes, "not_in_any_protocol") is None
    # a contribution made by hand goes by the hook Protocol its object satisfies
    assert h.time_limit(Contribution("notes", CountedNotes()), "search") == DEFAULT_TIMEOUTS["Retriever.search"]


def test_the_defaults_name_protocol_methods_and_leave_model_loading_and_syncing_unlimited() -> None:
    assert all(key.count(".") == 1 for key in DEFAULT_TIMEOUTS)
    assert DEFAULT_TIMEOUTS["ModelBackend.load"] is None and DEFAULT_TIMEOUTS["Library.sync"] is None
    assert DEFAULT_TIMEOUTS["DocumentLoader.load"] == 120.0
    assert DEFAULT_TIMEOUTS["SafetyFilter.screen"] == 5.0 and DEFAULT_TIMEOUTS["Retriever.search"] == 30.0


def test_a_bare_method_name_from_before_1_1_sets_that_method_where_it_has_a_limit(
        caplog: pytest.LogCaptureFixture) -> None:
    timeouts = resolve_timeouts({"load": 300, "count": 4, "search": "soon", "frobnicate": 1,
                                 "Countable.count": 2})
    assert timeouts["DocumentLoader.load"] == 300.0
    assert timeouts["ModelBackend.load"] is None  # a bare key never limits what has no limit
    assert timeouts["Library.count"] == 4.0
    assert timeouts["Countable.count"] == 2.0  # "Protocol.method" wins over a bare name
    assert timeouts["Retriever.search"] == DEFAULT_TIMEOUTS["Retriever.search"]
    assert "search = 'soon'" in caplog.text and "frobnicate" in caplog.text


def test_config_toml_sets_limits_in_both_forms(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[plugins.timeouts]\nsearch = 60\n"DocumentLoader.load" = 300\n', encoding="utf-8")
    app = Application(tmp_path, load_entry_points=False)
    try:
        assert app.host.timeouts["Retriever.search"] == 60.0
        assert app.host.timeouts["DocumentLoader.load"] == 300.0
        assert app.host.timeouts["SafetyFilter.screen"] == DEFAULT_TIMEOUTS["SafetyFilter.screen"]
    finally:
        app.close()


# --- optional capabilities --------------------------------------------------------------


def test_closing_closes_what_was_collected_and_is_closable(tmp_path: Path) -> None:
    notes = CountedNotes()
    app = Application(tmp_path, load_entry_points=False)
    app.host.add("notes", Registers("register_retrievers", notes, Notes()))
    app.close()
    assert notes.closed == 0  # never collected: nothing opened, nothing to close
    app = Application(tmp_path, load_entry_points=False)
    app.host.add("notes", Registers("register_retrievers", notes, Notes()))
    app.host.retrievers()
    app.close()
    assert notes.closed == 1


class NotesLibrary(CountedNotes):
    def sources(self) -> list:
        return []

    def add_source(self, path: Path) -> str:
        return str(path)

    def remove_source(self, path: str) -> int:
        return 0

    def sync(self, roots=None, progress=None, cancel=None):
        return archivist.SyncReport()

    def skipped(self) -> list:
        return []


def test_an_object_registered_through_two_hooks_is_closed_once(tmp_path: Path) -> None:
    shelf = NotesLibrary()

    class Both:
        @hookimpl
        def register_retrievers(self, register):
            register(shelf)

        @hookimpl
        def register_libraries(self, register):
            register(shelf)

    h = host(tmp_path)
    h.add("both", Both())
    [library], [retriever] = h.libraries(), h.retrievers()
    assert h.time_limit(library, "count") == DEFAULT_TIMEOUTS["Library.count"]
    assert h.time_limit(retriever, "count") == DEFAULT_TIMEOUTS["Countable.count"]
    h.close()
    assert shelf.closed == 1


# --- the context plugins receive --------------------------------------------------------


def test_the_context_is_built_with_the_hosts_loaders_and_the_apps_model(tmp_path: Path) -> None:
    app = Application(tmp_path, load_entry_points=False)
    try:
        loader = SlowLoader()
        app.host.add("loader", Registers("register_loaders", loader))
        context = app.host.context
        assert isinstance(context.home, Path) and context.home == app.paths.home
        assert context.loaders() == [loader]
        assert context.answer_aside == app.ask_model
        assert context.ask_model([archivist.ChatMessage("user", "hi")]) is None  # no model loaded
    finally:
        app.close()


def test_a_host_handed_to_the_application_gets_its_model_and_fresh_contributions(tmp_path: Path) -> None:
    seen: list[PluginContext] = []

    class Remembers:
        @hookimpl
        def register_retrievers(self, register, context):
            seen.append(context)
            register(Notes())

    h = host(tmp_path)
    h.add("remembers", Remembers())
    h.retrievers()
    app = Application(tmp_path, host=h)
    try:
        assert h.context.answer_aside == app.ask_model
        h.retrievers()  # collected again, so no plugin keeps the context without the model
        assert seen[-1].answer_aside == app.ask_model and seen[0].answer_aside is None
        assert seen[-1].loaders() == []
    finally:
        app.close()


def test_a_context_made_by_hand_finds_no_loaders_and_no_model(tmp_path: Path) -> None:
    context = PluginContext(home=tmp_path)
    assert context.loaders() == [] and context.ask_model([]) is None
    assert "find_loaders" not in repr(context)


def test_the_context_gets_its_callables_as_fields_not_behind_the_frozen_dataclass() -> None:
    source = Path(archivist.__file__).parent
    for name in ("types.py", "plugins.py", "application.py"):
        assert "object.__setattr__" not in (source / name).read_text(encoding="utf-8"), name


# --- API version ------------------------------------------------------------------------


def test_api_1_2_still_loads_plugins_written_for_1_0_and_1_1() -> None:
    assert archivist.API_VERSION == "1.2"
    assert api_compatible("1.0") and api_compatible("1.1") and api_compatible("1.2")
    assert not api_compatible("1.3") and not api_compatible("2.0")


def test_every_optional_capability_is_exported(tmp_path: Path) -> None:
    for name in ("AsideModel", "Countable", "Closable", "ModelSource", "Library", "WatchesSources", "Watching"):
        assert name in archivist.__all__ and hasattr(archivist, name)


def test_a_guarded_call_without_a_limit_runs_on_the_callers_thread(tmp_path: Path) -> None:
    """So a panel's widget is built on the GUI thread, and a model loads where it is asked."""
    h = host(tmp_path)
    backend = SlowBackend()
    backend.load = lambda model, provider=None: threading.current_thread()  # type: ignore[method-assign]
    h.add("backend", Registers("register_model_backends", backend))
    [mine] = [b for b in h.model_backends() if b.plugin == "backend"]
    assert h.run(mine, "load", None) is threading.current_thread()
