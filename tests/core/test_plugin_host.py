"""The plugin host: discovery through entry points, safe mode, and surviving bad plugins."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from archivist import PluginFailure, Stage, Verdict, hookimpl
from archivist.context import PluginContext
from archivist.plugins import PluginHost
from archivist.types import Action


def make_distribution(root: Path, name: str, module_source: str) -> None:
    """Install a real third-party distribution (dist-info + module) under ``root``."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[archivist]\n{name} = {name}\n")


@pytest.fixture()
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    make_distribution(
        root,
        "tp_echo",
        """
        from archivist import hookimpl, Verdict

        class EchoFilter:
            name = "echo"
            def screen(self, text, stage):
                return Verdict.allow(text, filter_name=self.name)

        @hookimpl
        def register_safety_filters(register):
            register(EchoFilter())
        """,
    )
    make_distribution(
        root,
        "tp_broken_import",
        """
        raise RuntimeError("this plugin cannot even be imported")
        """,
    )
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ("tp_echo", "tp_broken_import"):
        sys.modules.pop(name, None)


def host(tmp_path: Path, **kwargs) -> PluginHost:
    return PluginHost(PluginContext(home=tmp_path), **kwargs)


def test_builtins_arrive_through_the_entry_point_group(tmp_path: Path) -> None:
    h = host(tmp_path)
    assert h.records["faiss"].origin == "built-in"
    assert h.records["safety"].origin == "built-in"
    assert h.records["remote"].origin == "built-in"
    assert h.records["archivist.engine.backend"].origin == "core"
    backends = h.model_backends()
    # The remote backend (models served elsewhere) is a built-in plugin, registered after the core.
    assert [b.obj.name for b in backends] == ["remote", "onnxruntime-genai"]


def test_third_party_plugin_loads_and_contributes(tmp_path: Path, third_party: Path) -> None:
    h = host(tmp_path)
    assert h.records["tp_echo"].origin == "third-party"
    assert h.records["tp_echo"].version == "1.2.3"
    names = [c.obj.name for c in h.safety_filters()]
    assert "echo" in names


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(tmp_path: Path, third_party: Path) -> None:
    h = host(tmp_path)
    record = h.records["tp_broken_import"]
    assert not record.enabled
    assert "cannot even be imported" in record.errors[0].message
    assert h.records["tp_echo"].enabled


def test_safe_mode_keeps_only_plugins_shipped_with_archivist(tmp_path: Path, third_party: Path) -> None:
    h = host(tmp_path, safe_mode=True)
    assert "tp_echo" not in h.records
    assert "faiss" in h.records and "safety" in h.records


def test_archivist_plugins_variable_restricts_which_load(
    tmp_path: Path, third_party: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHIVIST_PLUGINS", "tp_echo")
    h = host(tmp_path)
    assert "tp_echo" in h.records
    assert "faiss" not in h.records and "safety" not in h.records
    assert "archivist.engine.backend" in h.records  # the core always loads


class RaisesInHook:
    @hookimpl
    def register_safety_filters(self, register):
        raise ValueError("boom in the hook")


class RaisesInScreen:
    name = "flaky"

    def screen(self, text: str, stage: Stage) -> Verdict:
        raise RuntimeError("boom in screen")


class ContributesFlaky:
    @hookimpl
    def register_safety_filters(self, register):
        register(RaisesInScreen())


class GoodFilter:
    name = "good"

    def screen(self, text: str, stage: Stage) -> Verdict:
        return Verdict(Action.WARN, reason="fine", filter_name=self.name)


class ContributesGood:
    @hookimpl
    def register_safety_filters(self, register):
        register(GoodFilter())


def test_a_hook_that_raises_disables_only_its_plugin(tmp_path: Path) -> None:
    h = host(tmp_path, load_entry_points=False)
    h.add("bad", RaisesInHook())
    h.add("good", ContributesGood())
    filters = h.safety_filters()
    assert [f.plugin for f in filters] == ["good"]
    assert not h.enabled("bad")
    assert h.errors[0].plugin == "bad"
    assert "boom in the hook" in h.errors[0].message


class RaisesInSearch:
    name = "flaky-search"

    def search(self, query: str, k: int = 5) -> list:
        raise RuntimeError("boom in search")


class ContributesFlakyRetriever:
    @hookimpl
    def register_retrievers(self, register):
        register(RaisesInSearch())


def test_a_contribution_that_raises_disables_its_plugin_and_tells_listeners(tmp_path: Path) -> None:
    h = host(tmp_path, load_entry_points=False)
    h.add("flaky", ContributesFlakyRetriever())
    h.add("good", ContributesGood())
    seen = []
    h.listeners.append(seen.append)
    (flaky,) = h.retrievers()
    with pytest.raises(PluginFailure, match="flaky"):
        h.run(flaky, "search", "hello", 3)
    assert [e.plugin for e in seen] == ["flaky"]
    assert not h.enabled("flaky") and h.retrievers() == []
    good = h.safety_filters()[0]
    assert h.run(good, "screen", "hello", Stage.INPUT).action is Action.WARN


def test_a_safety_filter_that_raises_is_recorded_but_stays_on(tmp_path: Path) -> None:
    """A screen that fails is answered by failing closed (archivist.screening), not by
    switching the filter off: everything after one bad text would go unscreened."""
    h = host(tmp_path, load_entry_points=False)
    h.add("flaky", ContributesFlaky())
    seen = []
    h.listeners.append(seen.append)
    flaky = next(c for c in h.safety_filters() if c.plugin == "flaky")
    with pytest.raises(PluginFailure, match="stays on") as failure:
        h.run(flaky, "screen", "hello", Stage.INPUT)
    assert failure.value.error.message == "RuntimeError: boom in screen"
    assert [e.plugin for e in seen] == ["flaky"]
    assert h.enabled("flaky") and [c.plugin for c in h.safety_filters()] == ["flaky"]
    assert h.records["flaky"].errors[-1].where == "RaisesInScreen.screen"
    for _ in range(30):  # a filter failing on every text keeps its last errors only
        with pytest.raises(PluginFailure):
            h.run(flaky, "screen", "hello", Stage.INPUT)
    assert len(h.records["flaky"].errors) == 20 and h.enabled("flaky")


def test_registered_contributions_satisfy_their_protocols(tmp_path: Path) -> None:
    from archivist import ModelBackend, Retriever, SafetyFilter

    h = host(tmp_path)
    for c in h.model_backends():
        assert isinstance(c.obj, ModelBackend)
    for c in h.retrievers():
        assert isinstance(c.obj, Retriever)
    for c in h.safety_filters():
        assert isinstance(c.obj, SafetyFilter)


class Hangs:
    name = "sleepy"

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()

    def search(self, query: str, k: int = 5) -> list:
        self.release.wait(30)
        return []


def test_a_contribution_that_hangs_is_given_up_after_its_time_limit(tmp_path: Path) -> None:
    from archivist.plugins import Contribution

    h = host(tmp_path, load_entry_points=False, timeouts={"search": 0.2})
    hanging = Hangs()
    h.add("sleepy", object())
    with pytest.raises(PluginFailure, match=r"gave up after 0\.2 s"):
        h.run(Contribution("sleepy", hanging), "search", "q", 3)
    hanging.release.set()
    assert not h.enabled("sleepy")


def test_a_plugin_wanting_a_newer_api_is_disabled_with_the_version_it_wants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "site"
    root.mkdir()
    make_distribution(root, "tp_future", "ARCHIVIST_API_VERSION = '9.0'\n")
    make_distribution(root, "tp_current", "ARCHIVIST_API_VERSION = '1.0'\n")
    monkeypatch.syspath_prepend(str(root))
    try:
        h = host(tmp_path)
        future = h.records["tp_future"]
        assert not future.enabled
        assert "needs plugin API 9.0" in future.errors[0].message
        assert h.records["tp_current"].enabled
    finally:
        sys.modules.pop("tp_future", None)
        sys.modules.pop("tp_current", None)


def test_api_compatibility_rule() -> None:
    from archivist.plugins import api_compatible

    assert api_compatible("1.0", "1.0")
    assert api_compatible("1.0", "1.3")
    assert not api_compatible("1.4", "1.3")
    assert not api_compatible("2.0", "1.9")
    assert not api_compatible("one", "1.0")


def test_a_plugin_disabled_by_the_user_is_listed_but_not_imported(tmp_path: Path, third_party: Path) -> None:
    h = host(tmp_path, disabled={"tp_echo"})
    assert h.records["tp_echo"].disabled_by_user
    assert not h.records["tp_echo"].enabled
    assert "tp_echo" not in sys.modules
    assert all(c.plugin != "tp_echo" for c in h.safety_filters())


def test_tracing_logs_each_hook_call_with_its_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ARCHIVIST_TRACE_PLUGINS", "1")
    h = host(tmp_path, load_entry_points=False)
    h.add("good", ContributesGood())
    with caplog.at_level("WARNING", logger="archivist.plugins"):
        good = h.safety_filters()[0]
        h.run(good, "screen", "hi", Stage.INPUT)
    lines = [r.getMessage() for r in caplog.records if "[trace]" in r.getMessage()]
    assert any("good register_safety_filters" in line and line.endswith("ms") for line in lines)
    assert any("good GoodFilter.screen" in line for line in lines)


def test_guarded_calls_reuse_a_worker_but_never_the_one_left_hanging() -> None:
    import threading

    from archivist.plugins import PluginTimeout, _call_with_timeout

    names = [_call_with_timeout(lambda: threading.get_ident(), (), {}, 5.0) for _ in range(3)]
    assert len(set(names)) == 1  # one worker served all three
    release = threading.Event()
    hung: list[int] = []

    def hang() -> None:
        hung.append(threading.get_ident())
        release.wait(10)

    with pytest.raises(PluginTimeout):
        _call_with_timeout(hang, (), {}, 0.2)
    after = _call_with_timeout(lambda: threading.get_ident(), (), {}, 5.0)
    assert after != hung[0]
    release.set()


# --- calling order: pluggy's, wrappers included ------------------------------------------

class Named:
    """A retriever known by its name, to see which plugin's contribution arrived when."""

    def __init__(self, name: str) -> None:
        self.name = name

    def search(self, query: str, k: int = 5) -> list:
        return []


class Recorder:
    """Plugins that log when their hook code runs, to check the order calls come in."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def plugin(self, name: str, **marks: bool) -> object:
        log = self.log

        class Plain:
            @hookimpl(**marks)
            def register_retrievers(self, register, context):
                log.append(name)
                register(Named(name))

        return Plain()

    def wrapper(self, name: str, **marks: bool) -> object:
        log = self.log

        class Wrapper:
            @hookimpl(wrapper=True, **marks)
            def register_retrievers(self, register, context):
                log.append(f"{name} before")
                result = yield
                log.append(f"{name} after")
                return result

        return Wrapper()


def test_hooks_run_in_pluggys_order_tryfirst_plain_trylast_and_wrappers_around(tmp_path: Path) -> None:
    rec = Recorder()
    h = host(tmp_path, load_entry_points=False)
    h.add("last", rec.plugin("last", trylast=True))
    h.add("first", rec.plugin("first", tryfirst=True))
    h.add("plain-a", rec.plugin("plain-a"))
    h.add("plain-b", rec.plugin("plain-b"))  # registered later: called earlier
    h.add("outer", rec.wrapper("outer", tryfirst=True))
    h.add("inner", rec.wrapper("inner"))
    contributed = h.retrievers()
    assert rec.log == ["outer before", "inner before", "first", "plain-b", "plain-a", "last",
                       "inner after", "outer after"]
    # the same order pluggy itself calls them in
    pluggy_log = list(rec.log)
    rec.log.clear()
    h.pm.hook.register_retrievers(register=lambda obj: None, context=h.context)
    assert rec.log == pluggy_log
    assert [(c.plugin, c.obj.name) for c in contributed] == [
        ("first", "first"), ("plain-b", "plain-b"), ("plain-a", "plain-a"), ("last", "last")]


def test_a_wrapper_sees_and_may_replace_the_results(tmp_path: Path) -> None:
    class Upper:
        @hookimpl
        def register_commands(self, cli, context):
            return "from upper"

    class Lower:
        @hookimpl
        def register_commands(self, cli, context):
            return "from lower"

    seen = []

    class Reorder:
        @hookimpl(wrapper=True)
        def register_commands(self, cli, context):
            results = yield
            seen.append(list(results))
            return list(reversed(results)) + ["added by the wrapper"]

    class OldStyle:
        @hookimpl(hookwrapper=True)
        def register_commands(self, cli, context):
            outcome = yield
            outcome.force_result(outcome.get_result()[:2])

    h = host(tmp_path, load_entry_points=False)
    h.add("lower", Lower())
    h.add("upper", Upper())
    h.add("reorder", Reorder())
    h.add("old", OldStyle())
    assert h.call_hook("register_commands", cli=None, context=h.context) == [
        ("lower", "from lower"), ("upper", "from upper")]
    assert seen == [["from upper", "from lower"]]
    h2 = host(tmp_path, load_entry_points=False)
    h2.add("lower", Lower())
    h2.add("reorder", Reorder())
    assert h2.call_hook("register_commands", cli=None, context=h2.context) == [
        ("lower", "from lower"), ("reorder", "added by the wrapper")]


def test_a_broken_wrapper_is_disabled_and_the_others_still_contribute(tmp_path: Path) -> None:
    rec = Recorder()

    class NoYield:
        @hookimpl(wrapper=True)
        def register_retrievers(self, register, context):
            return
            yield  # pragma: no cover - a generator that ends before yielding

    class RaisesAfter:
        @hookimpl(wrapper=True)
        def register_retrievers(self, register, context):
            yield
            raise RuntimeError("teardown bug")

    class RaisesPlain:
        @hookimpl
        def register_retrievers(self, register, context):
            register(Named("half"))
            raise RuntimeError("plain bug")

    h = host(tmp_path, load_entry_points=False)
    h.add("good", rec.plugin("good"))
    h.add("plain-bug", RaisesPlain())
    h.add("no-yield", NoYield())
    h.add("teardown-bug", RaisesAfter())
    h.add("wrap", rec.wrapper("wrap"))
    assert [c.obj.name for c in h.retrievers()] == ["good"]  # "half" goes with the plugin that raised
    assert rec.log == ["wrap before", "good", "wrap after"]
    assert not h.enabled("no-yield") and not h.enabled("teardown-bug") and not h.enabled("plain-bug")
    messages = {e.plugin: e.message for e in h.errors}
    assert "did not yield" in messages["no-yield"] and "teardown bug" in messages["teardown-bug"]
    assert h.enabled("good") and h.enabled("wrap")
