"""The fixtures of ``archivist.testing`` work in a plugin author's project.

Each test writes a small author's test suite into a temporary folder and runs pytest
on it in a fresh process, as ``pytest`` in the author's own checkout would, then
checks every test of that suite passed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import tomllib
from pathlib import Path

import pytest
from author_pytest import ROOT, entry_point_installed, run_pytest

from archivist import ChatMessage, GenerationOptions, GenerationStats, ModelInfo

FIXTURES = (
    "archivist_home",
    "archivist_host",
    "archivist_model_dir",
    "archivist_app",
    "archivist_assistant",
    "archivist_sample_docs",
    "archivist_cli",
    "archivist_scripted_app",
    "archivist_scripted",
)

HOST_AND_FILES = '''
import json
import os
from pathlib import Path

import pytest

from archivist import DocumentLoader, PluginFailure, Stage, Verdict, hookimpl


class Shout:
    name = "shout"

    def screen(self, text, stage):
        return Verdict.allow(text.upper(), filter_name=self.name)


class Broken:
    name = "broken"

    def screen(self, text, stage):
        raise RuntimeError("boom")


class ShoutPlugin:
    @hookimpl
    def register_safety_filters(self, register):
        register(Shout())


class BrokenPlugin:
    @hookimpl
    def register_safety_filters(self, register):
        register(Broken())


def test_home_is_empty_and_is_archivist_home(archivist_home):
    assert archivist_home.is_dir() and not any(archivist_home.iterdir())
    assert os.environ["ARCHIVIST_HOME"] == str(archivist_home)


def test_host_discovers_nothing_but_the_core(archivist_host):
    assert {r.origin for r in archivist_host.records.values()} == {"core"}
    assert archivist_host.safety_filters() == []
    assert archivist_host.retrievers() == []


def test_host_add_registers_the_plugin_under_test(archivist_host):
    archivist_host.add("shout", ShoutPlugin())
    [filt] = archivist_host.safety_filters()
    assert filt.plugin == "shout"
    verdict = archivist_host.run(filt, "screen", "hi", Stage.INPUT)
    assert verdict.text == "HI"


def test_host_records_a_failing_filter_and_keeps_the_others(archivist_host):
    archivist_host.add("shout", ShoutPlugin())
    archivist_host.add("broken", BrokenPlugin())
    broken = next(c for c in archivist_host.safety_filters() if c.plugin == "broken")
    with pytest.raises(PluginFailure, match="boom"):
        archivist_host.run(broken, "screen", "hi", Stage.INPUT)
    assert [e.plugin for e in archivist_host.errors] == ["broken"]
    # A filter that fails stays on (the screener withholds what it could not screen).
    assert sorted(c.plugin for c in archivist_host.safety_filters()) == ["broken", "shout"]


def test_host_context_home_is_the_temporary_home(archivist_host, archivist_home):
    assert archivist_host.context.home == archivist_home
    assert archivist_host.context.data_dir("mine") == archivist_home / "plugins" / "mine"


def test_sample_docs_hold_several_formats(archivist_sample_docs):
    names = sorted(p.name for p in archivist_sample_docs.iterdir())
    assert {Path(n).suffix for n in names} >= {".txt", ".md", ".html", ".ipynb"}
    notebook = json.loads((archivist_sample_docs / "tides.ipynb").read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4 and notebook["cells"]
    assert "1871" in (archivist_sample_docs / "lighthouse.txt").read_text(encoding="utf-8")


def test_sample_docs_are_fresh_for_each_test(archivist_sample_docs):
    (archivist_sample_docs / "lighthouse.txt").unlink()


def test_sample_docs_are_fresh_for_each_test_again(archivist_sample_docs):
    assert (archivist_sample_docs / "lighthouse.txt").exists()


def test_cli_runs_the_real_command_line_in_the_home(archivist_cli, archivist_home):
    result = archivist_cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {"faiss", "safety"} <= {r["name"] for r in rows}
    assert (archivist_home / "models").is_dir()  # the command ran in the fixture's home
'''

APP_AND_ASSISTANT = '''
from pathlib import Path

from archivist import GenerationOptions


def test_model_dir_is_the_default_model(archivist_model_dir):
    assert (Path(archivist_model_dir) / "genai_config.json").is_file()


def test_app_lives_in_the_home_and_uses_the_default_model(archivist_app, archivist_home, archivist_model_dir):
    assert archivist_app.paths.home == archivist_home.resolve()
    info = archivist_app.model_info()
    assert Path(info.path) == Path(archivist_model_dir).resolve()
    assert archivist_app.host.records["faiss"].origin == "built-in"


def test_assistant_answers_from_the_real_model(archivist_assistant):
    answer = archivist_assistant.ask(
        "What is the capital of France?",
        use_documents=False,
        options=GenerationOptions(max_new_tokens=12),
    )
    assert answer.text.strip()
    assert answer.stats.completion_tokens > 0
'''


SCRIPTED_SUITE = '''
from archivist import GenerationOptions, Passage, hookimpl


class OnePassage:
    name = "one"

    def search(self, query, k=5):
        return [Passage(text="The lamp is seen 22 nautical miles out.", path="/notes/lamp.txt")]


class OnePassagePlugin:
    @hookimpl
    def register_retrievers(self, register):
        register(OnePassage())


def test_the_app_answers_with_the_scripted_model_and_loads_installed_plugins(archivist_scripted_app):
    assert archivist_scripted_app.model_info().backend == "scripted"
    assert archivist_scripted_app.host.records["faiss"].origin == "built-in"


def test_the_assistant_streams_the_queued_reply(archivist_scripted_app, archivist_scripted):
    archivist_scripted.reply(["Twenty-two ", "miles [", "1", "]."])
    archivist_scripted_app.host.add("one", OnePassagePlugin())
    answer = archivist_scripted_app.assistant().ask("How far is the lamp seen?")
    assert answer.text == "Twenty-two miles [1]."
    assert [(c.path, c.cited) for c in answer.citations] == [("/notes/lamp.txt", True)]
    assert "[1] (lamp.txt) The lamp is seen 22 nautical miles out." in archivist_scripted.prompts[0]


def test_replies_are_used_in_order_and_cut_at_max_new_tokens(archivist_scripted_app, archivist_scripted):
    archivist_scripted.reply("one two three four")
    archivist_scripted.reply("second reply")
    assistant = archivist_scripted_app.assistant()
    cut = assistant.ask("Count.", use_documents=False, options=GenerationOptions(max_new_tokens=2))
    assert (cut.text, cut.stats.finish_reason) == ("one two", "length")
    whole = assistant.ask("Again.", use_documents=False)
    assert (whole.text, whole.stats.finish_reason) == ("second reply", "stop")
    assert len(archivist_scripted.prompts) == 2
'''


def write_suite(folder: Path, source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_author.py").write_text(textwrap.dedent(source), encoding="utf-8")


def test_host_home_sample_docs_and_cli_fixtures(tmp_path: Path) -> None:
    suite = tmp_path / "author"
    write_suite(suite, HOST_AND_FILES)
    result, outcomes = run_pytest(suite)
    assert outcomes and set(outcomes.values()) == {"passed"}, result.stdout + result.stderr
    assert len(outcomes) == HOST_AND_FILES.count("\ndef test_")


def test_app_and_assistant_fixtures_use_the_default_model(tmp_path: Path) -> None:
    suite = tmp_path / "author"
    write_suite(suite, APP_AND_ASSISTANT)
    result, outcomes = run_pytest(suite)
    assert outcomes and set(outcomes.values()) == {"passed"}, result.stdout + result.stderr
    assert len(outcomes) == APP_AND_ASSISTANT.count("\ndef test_")


def test_scripted_fixtures_answer_what_the_test_queued(tmp_path: Path) -> None:
    suite = tmp_path / "author"
    write_suite(suite, SCRIPTED_SUITE)
    result, outcomes = run_pytest(suite)
    assert outcomes and set(outcomes.values()) == {"passed"}, result.stdout + result.stderr
    assert len(outcomes) == SCRIPTED_SUITE.count("\ndef test_")


# -- the scripted model itself -------------------------------------------------------


def scripted_model():
    from archivist.testing import ScriptedBackend

    backend = ScriptedBackend()
    return backend, backend.load(backend.info)


def test_the_scripted_backend_and_model_satisfy_the_public_protocols() -> None:
    from archivist import LoadedModel, ModelBackend, ModelSource

    backend, model = scripted_model()
    assert isinstance(backend, ModelBackend) and isinstance(backend, ModelSource)
    assert isinstance(model, LoadedModel)
    assert backend.models() == [backend.info] and backend.info.backend == backend.name == "scripted"
    assert backend.can_load(backend.info)
    assert not backend.can_load(ModelInfo(id="other", path="/x", name="Other"))


def test_a_string_reply_streams_a_word_at_a_time_and_a_list_as_given() -> None:
    backend, model = scripted_model()
    backend.reply("Rome is  the capital.")
    backend.reply(["Ro", "me [", "1]", "."])
    options = GenerationOptions(max_new_tokens=50)
    assert list(model.stream("p1", options)) == ["Rome", " is", "  the", " capital."]
    stats = GenerationStats()
    assert list(model.stream("p2", options, stats)) == ["Ro", "me [", "1]", "."]
    assert (stats.completion_tokens, stats.finish_reason) == (4, "stop")
    assert backend.prompts == ["p1", "p2"]


def test_stats_are_filled_like_the_real_runtimes() -> None:
    backend, model = scripted_model()
    backend.reply("a b c d e")
    stats = GenerationStats()
    prompt = model.apply_chat_template([ChatMessage("system", "Be brief."), ChatMessage("user", "Go on.")])
    assert prompt == "<|system|>\nBe brief.\n<|user|>\nGo on.\n<|assistant|>\n"
    assert list(model.stream(prompt, GenerationOptions(max_new_tokens=3), stats)) == ["a", " b", " c"]
    assert stats.prompt_tokens == model.count_tokens(prompt) == 7
    assert (stats.completion_tokens, stats.finish_reason) == (3, "length")
    assert stats.ttft_ms is not None and stats.total_ms >= stats.ttft_ms and stats.tokens_per_s


def test_cancel_stops_the_scripted_stream_before_the_next_piece() -> None:
    backend, model = scripted_model()
    backend.reply("one two three four")
    cancel = threading.Event()
    stats = GenerationStats()
    pieces = []
    for piece in model.stream("p", GenerationOptions(), stats, cancel):
        pieces.append(piece)
        cancel.set()
    assert pieces == ["one"]
    assert (stats.completion_tokens, stats.finish_reason) == (1, "cancelled")


def test_a_stream_with_no_reply_queued_raises_rather_than_inventing_one() -> None:
    _backend, model = scripted_model()
    with pytest.raises(LookupError, match="no reply is queued"):
        list(model.stream("p", GenerationOptions()))


def test_use_scripted_model_registers_it_through_the_public_hook(tmp_path: Path) -> None:
    from archivist.application import Application
    from archivist.model_service import MODEL_SETTING
    from archivist.testing import SCRIPTED, use_scripted_model

    app = Application(tmp_path / "home", load_entry_points=False)
    try:
        backend = use_scripted_model(app)
        assert app.host.records[SCRIPTED].origin == "third-party"
        assert [c.obj for c in app.host.model_backends() if c.plugin == SCRIPTED] == [backend]
        assert app.setting(MODEL_SETTING) == "scripted"
        assert app.load_model() in backend.loaded
    finally:
        app.close()


def test_every_fixture_is_documented_in_the_module_and_the_guide() -> None:
    import archivist.testing as kit

    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in FIXTURES:
        assert callable(getattr(kit, name)), name
        assert f"``{name}``" in (kit.__doc__ or ""), f"{name} missing from archivist.testing's docstring"
        assert f"`{name}`" in guide, f"{name} missing from docs/plugins.md"


def test_loading_the_kit_imports_nothing_heavy() -> None:
    """Pytest imports the kit in every run wherever Archivist is installed."""
    heavy = ["onnxruntime", "onnxruntime_genai", "faiss", "PySide6", "sqlalchemy", "numpy",
             "archivist.application", "archivist.plugins", "archivist_faiss", "archivist_safety"]
    code = (
        "import sys, archivist.testing\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_kit_is_registered_as_a_pytest_plugin() -> None:
    """Archivist's distribution declares the ``pytest11`` entry point, and it is installed."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    entry_points = pyproject["project"].get("entry-points", {})
    assert entry_points.get("pytest11") == {"archivist": "archivist.testing"}, (
        'add to pyproject.toml: [project.entry-points.pytest11] archivist = "archivist.testing"'
    )
    assert entry_point_installed(), "reinstall Archivist (pip install -e .) to register the entry point"
