"""One chat turn, from the user's text to a persisted, screened, cited answer. Qt-free.

screen input -> retrieve -> screen passages -> pack prompt -> stream from the model ->
screen output sentence by sentence -> persist -> citations. The turn is a generator of
events so the CLI can print and the GUI can render as text arrives; ``ask`` drains it
for callers who only want the result.

A conversation with pinned files answers from those files instead of the index: read
whole (:mod:`archivist.whole_files`), given to the model whole when they fit its
context, otherwise in parts by a map-reduce pass (:mod:`archivist.map_reduce`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from archivist.collection_choice import Choice, check_choice, collection_of, known_collections
from archivist.errors import PluginFailure
from archivist.map_reduce import FilePass, pass_budget
from archivist.prompt import (
    DEFAULT_SYSTEM_PROMPT,
    WHOLE_FILE_INSTRUCTIONS,
    grounded_messages,
    make_citations,
    pack_prompt,
)
from archivist.protocols import Countable
from archivist.repetition import LoopGuard
from archivist.types import (
    Action,
    ChatMessage,
    Citation,
    GenerationOptions,
    GenerationStats,
    Passage,
    Stage,
    Verdict,
)
from archivist.whole_files import ReadCache, file_units, pin_paths, read_files

if TYPE_CHECKING:
    from archivist.plugins import PluginHost
    from archivist.protocols import LoadedModel
    from archivist.screening import Screener
    from archivist.store.conversations import Conversations

log = logging.getLogger(__name__)

NOTHING_FOUND = (
    "I could not find anything about this in your documents, so I won't guess. "
    "Try other words, or add the folder that holds the answer."
)
NOTHING_IN_FILES = "I read the pinned files but found nothing about this in them, so I won't guess."
# Tokens kept free beside prompt and answer, for template tokens the count may miss.
CONTEXT_MARGIN = 16
# Context used when the model allows more: small CPU models slow down on long prompts.
DEFAULT_CONTEXT_BUDGET = 2048
# Passages offered to the model: small local models answer worse (and start later) with
# many; measured on the built-in model, 5 sources made an 805-token prompt, 6 s to the
# first token on 2 busy cores.
DEFAULT_SOURCES = 3
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Answer:
    """The outcome of one turn, as shown to the user and stored."""

    text: str
    conversation_id: int
    model: str
    provider: str
    stats: GenerationStats
    citations: list[Citation] = field(default_factory=list)
    sources: list[Passage] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    grounded: bool = False
    message_id: int | None = None
    files: list[str] = field(default_factory=list)  # the pinned files it was answered from
    parts: int = 0  # parts of a map-reduce pass over them (0: read whole, or no files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "conversation_id": self.conversation_id,
            "model": self.model,
            "provider": self.provider,
            "prompt_tokens": self.stats.prompt_tokens,
            "completion_tokens": self.stats.completion_tokens,
            "ttft_ms": _round(self.stats.ttft_ms),
            "tokens_per_s": _round(self.stats.tokens_per_s),
            "finish_reason": self.stats.finish_reason,
            "grounded": self.grounded,
            "citations": [c.to_dict() for c in self.citations],
            "timings": {k: _round(v) for k, v in self.timings.items()},
            "safety": [v.to_dict() for v in self.verdicts if v.action is not Action.ALLOW],
            "notices": list(self.notices),
            "files": list(self.files),
            "parts": self.parts,
        }


@dataclass(frozen=True)
class TurnEvent:
    """Something the front end should show now.

    kinds: ``sources`` (passages found), ``progress`` (how far reading pinned files is,
    "Reading part 3 of 12 (report.pdf, pages 9-12)"), ``text`` (a piece of the answer,
    already screened), ``notice`` (a safety or plugin message), ``done`` (the final Answer).
    """

    kind: Literal["sources", "progress", "text", "notice", "done"]
    text: str = ""
    sources: tuple[Passage, ...] = ()
    verdict: Verdict | None = None
    answer: Answer | None = None


def _no_preference(key: str, default: Any) -> Any:
    return default


class Assistant:
    """Answers questions with the plugins of ``host``, the model ``load_model`` returns
    (``load_model(None)``: the chosen one), the store ``conversations()`` opens, and
    the user's prompt settings (``preference(key, default)``: ``system_prompt``,
    ``sources``, ``context_budget``). The application hands it its own; a test may
    hand it others.
    """

    def __init__(
        self,
        host: PluginHost,
        *,
        load_model: Callable[[str | None], LoadedModel],
        conversations: Callable[[], Conversations],
        preference: Callable[[str, Any], Any] = _no_preference,
        pinned_reads: ReadCache | None = None,
    ) -> None:
        self.host = host
        self.load_model = load_model
        self.conversations = conversations
        self.preference = preference
        # Pinned files read for earlier questions, kept while unchanged (whole_files.ReadCache).
        self.pinned_reads = pinned_reads if pinned_reads is not None else ReadCache()

    def _screener(self) -> Screener:
        from archivist.screening import Screener

        return Screener(self.host.safety_filters(), self.host)

    def collections(self) -> list[str]:
        """The collections a question may be answered from, by the names a user chooses
        them with: ``library`` (their own) first, then each shared one
        (:mod:`archivist.collection_choice`)."""
        return known_collections(self.host)

    def check_collections(self, names: Iterable[str]) -> frozenset[str]:
        """``names`` as a choice of collections; :class:`~archivist.collection_choice.UnknownCollection`
        (an ArchivistError listing the known names) for a name no retriever answers to."""
        return check_choice(names, self.collections())

    def retrieve(self, query: str, k: int, collections: Collection[str] | None = None) -> tuple[list[Passage], bool]:
        """Passages from every retriever of ``collections`` (None: every retriever),
        merged by rank; and whether any of them has documents."""
        ranked: dict[tuple[str, int, int, int | None], tuple[float, Passage]] = {}
        any_documents = False
        for contribution in self.host.retrievers():
            if collections is not None and collection_of(contribution.obj) not in collections:
                continue
            try:
                if isinstance(contribution.obj, Countable) and self.host.run(contribution, "count") == 0:
                    continue
                any_documents = True
                hits = self.host.run(contribution, "search", query, k)
            except PluginFailure as exc:
                log.warning("%s", exc)
                continue
            for rank, passage in enumerate(hits):
                key = (passage.path, passage.locator.start, passage.locator.end, passage.locator.page)
                fused = 1.0 / (60 + rank)
                if key in ranked:
                    fused += ranked[key][0]
                ranked[key] = (fused, passage)
        ordered = sorted(ranked.values(), key=lambda item: item[0], reverse=True)
        return [p for _, p in ordered[:k]], any_documents

    def stream(
        self,
        question: str,
        *,
        conversation_id: int | None = None,
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
        use_documents: bool = True,
        sources: int | None = None,
        model: str | None = None,
        collections: Collection[str] | None = None,
        files: Sequence[str | Path] | None = None,
    ) -> Iterator[TurnEvent]:
        """Run one turn, yielding events as they happen; the last one is ``done``.

        ``files`` pins files to the conversation (an empty list unpins all); None keeps
        the conversation's pins. With files pinned, the answer comes from them whole
        rather than from the collections: an unreadable one raises
        :class:`~archivist.errors.UnreadableDocument` naming it, before the model loads.

        ``collections`` chooses which collections answer (names from :meth:`collections`;
        an unknown one raises :class:`~archivist.collection_choice.UnknownCollection`
        before anything happens). None keeps the conversation's choice, or all of them
        for a new conversation. The choice is stored with the conversation.

        The turn is stored when it ends, in one transaction (the conversation, the
        question and the answer together): a turn stopped midway, the process killed
        included, stores nothing.
        """
        choice: Choice = None if collections is None else self.check_collections(collections)
        if choice is None and conversation_id is not None:
            choice = self.conversations().chosen_collections(conversation_id)
        options = options or GenerationOptions()
        question = _well_formed(question)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        notices: list[str] = []
        verdicts: list[Verdict] = []
        screener = self._screener()
        # A new conversation has no history, so the database (and SQLAlchemy's import,
        # a third of a second) is not needed before the first token: it is opened to
        # save the turn once the answer is done.
        history: list[ChatMessage] = []
        if conversation_id is not None:
            history = self.conversations().history(conversation_id)
        pins = pin_paths(files) if files is not None else (
            list(self.conversations().pinned_files(conversation_id)) if conversation_id is not None else [])
        documents = read_files(self.host, pins, self.pinned_reads)

        loaded = self.load_model(model)
        stats = GenerationStats()
        parts = 0

        def finish(text: str, citations: list[Citation], found: list[Passage], grounded: bool) -> Answer:
            nonlocal conversation_id
            timings["total_ms"] = (time.perf_counter() - started) * 1000.0
            before = timings.pop("before_generation_ms", 0.0)
            if stats.ttft_ms is not None:
                timings["ttft_ms"] = before + stats.ttft_ms
            conversation_id, message_id = self.conversations().save_turn(
                conversation_id,
                question,
                text,
                title=_title(question),
                model=loaded.info.id,
                provider=loaded.provider,
                citations=[c.to_dict() for c in citations],
                stats={**stats.to_dict(), **timings},
                safety=[v.to_dict() for v in verdicts if v.action is not Action.ALLOW],
                collections=choice,
                pinned_files=pins if files is not None else None,
            )
            return Answer(
                text=text,
                conversation_id=conversation_id,
                model=loaded.info.id,
                provider=loaded.provider,
                stats=stats,
                citations=citations,
                sources=found,
                verdicts=verdicts,
                notices=notices,
                timings=timings,
                grounded=grounded,
                message_id=message_id,
                files=list(pins),
                parts=parts,
            )

        verdict = screener.screen(question, Stage.INPUT)
        if verdict.action is not Action.ALLOW:
            verdicts.append(verdict)
        if verdict.action is Action.BLOCK:
            yield TurnEvent("notice", text=verdict.reason, verdict=verdict)
            text = verdict.text or verdict.reason
            yield TurnEvent("text", text=text)
            yield TurnEvent("done", answer=finish(text, [], [], False))
            return
        if verdict.action is Action.WARN:
            yield TurnEvent("notice", text=verdict.reason, verdict=verdict)
        if verdict.action is Action.REDACT and verdict.text is not None:
            question_for_model = verdict.text
        else:
            question_for_model = question

        found: list[Passage] = []
        grounded = False
        cite: Callable[[str], list[Citation]] | None = None
        budget = min(loaded.info.context_length, int(self.preference("context_budget", DEFAULT_CONTEXT_BUDGET)))
        system_prompt = str(self.preference("system_prompt", DEFAULT_SYSTEM_PROMPT))
        prompt = ""
        if documents:
            units, passage_verdicts = screener.check_passages(file_units(documents, pins))
            for passage_verdict in passage_verdicts:
                verdicts.append(passage_verdict)
                yield TurnEvent("notice", text=passage_verdict.reason, verdict=passage_verdict)
            grounded = bool(units)
            if not units:
                yield TurnEvent("text", text=NOTHING_IN_FILES)
                yield TurnEvent("done", answer=finish(NOTHING_IN_FILES, [], [], False))
                return
            file_budget = pass_budget(loaded.info.context_length, self.preference)
            # The answer gets at most a quarter of a small context: the files need the rest.
            options = dataclasses.replace(options, max_new_tokens=min(options.max_new_tokens, file_budget // 4))
            whole = _whole_prompt(question_for_model, history, units, system_prompt, loaded,
                                  file_budget - options.max_new_tokens - CONTEXT_MARGIN)
            if whole is not None:
                prompt, found = whole, units
            else:
                t0 = time.perf_counter()
                file_pass = FilePass(loaded, question_for_model, system_prompt, file_budget, options, cancel)
                parts = len(file_pass.plan(units))
                for line in file_pass.read():
                    yield TurnEvent("progress", text=line)
                if not file_pass.stopped and not file_pass.notes:
                    timings["map_ms"] = (time.perf_counter() - t0) * 1000.0
                    yield TurnEvent("text", text=NOTHING_IN_FILES)
                    yield TurnEvent("done", answer=finish(NOTHING_IN_FILES, [], [], True))
                    return
                if not file_pass.stopped:
                    for line in file_pass.prepare(history):
                        yield TurnEvent("progress", text=line)
                if not file_pass.stopped:
                    yield TurnEvent("progress", text=f"Writing the answer from the notes on {len(file_pass.notes)} "
                                                     f"of {parts} parts")
                timings["map_ms"] = (time.perf_counter() - t0) * 1000.0
                timings.update(file_pass.figures.to_dict())
                if file_pass.stopped:
                    done = len(file_pass.notes)
                    text = f"Stopped while reading the files ({done} of {parts} parts had notes)."
                    stats.finish_reason = "cancelled"
                    yield TurnEvent("text", text=text)
                    yield TurnEvent("done", answer=finish(text, [], [], True))
                    return
                prompt, cite = file_pass.prompt, file_pass.citations
        elif use_documents:
            t0 = time.perf_counter()
            k = sources or int(self.preference("sources", DEFAULT_SOURCES))
            found, has_documents = self.retrieve(question_for_model, k, choice)
            timings["retrieve_ms"] = (time.perf_counter() - t0) * 1000.0
            found, passage_verdicts = screener.check_passages(found)
            # Told, and kept with the answer: a document that tried to instruct the
            # model, or held what the filter removed, is something the user should know.
            for passage_verdict in passage_verdicts:
                verdicts.append(passage_verdict)
                yield TurnEvent("notice", text=passage_verdict.reason, verdict=passage_verdict)
            if has_documents and not found:
                yield TurnEvent("text", text=NOTHING_FOUND)
                yield TurnEvent("done", answer=finish(NOTHING_FOUND, [], [], False))
                return
            grounded = bool(found)
            if found:
                yield TurnEvent("sources", sources=tuple(found))

        if not prompt:
            packed = pack_prompt(
                question_for_model,
                history=history,
                passages=found,
                system_prompt=system_prompt,
                template=loaded.apply_chat_template,
                count_tokens=loaded.count_tokens,
                budget=budget - options.max_new_tokens - CONTEXT_MARGIN,
            )
            prompt, found = packed.prompt, list(packed.sources)
        timings["before_generation_ms"] = (time.perf_counter() - started) * 1000.0

        shown: list[str] = []
        raw = loaded.stream(prompt, options, stats, cancel)
        guard = LoopGuard()
        try:
            for event in screener.screen_stream(raw):
                cut = guard.loop_start(event.source or event.text) if event.text and not event.stopped else None
                if cut is not None:
                    # The model began repeating itself (archivist.repetition): the
                    # answer ends before the repeat, and generation stops.
                    kept = event.text[:cut].rstrip() if event.text == event.source else ""
                    if kept:
                        shown.append(kept)
                        yield TurnEvent("text", text=kept)
                    stats.finish_reason = "repetition"
                    break
                if event.verdict is not None and event.verdict.action is not Action.ALLOW:
                    verdicts.append(event.verdict)
                    yield TurnEvent("notice", text=event.verdict.reason, verdict=event.verdict)
                if event.text:
                    shown.append(event.text)
                    yield TurnEvent("text", text=event.text)
                if event.stopped:
                    stats.finish_reason = "blocked"
                    break
        finally:
            # Ends generation now (and frees the model) when the screen stopped the
            # answer or the caller stopped reading.
            # (LoadedModel.stream promises an iterator; a generator, as every built-in
            # model's is, can be told to stop now, a plain iterator just stops being read.)
            if isinstance(raw, Generator):
                raw.close()
        text = "".join(shown).strip()
        if cite is not None:
            citations = cite(text)
        else:
            citations = make_citations(text, found) if found else []
        answer = finish(text, citations, found, grounded)
        yield TurnEvent("done", answer=answer)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        """Run one turn to the end and return its answer."""
        answer = None
        for event in self.stream(question, **kwargs):
            if event.kind == "done":
                answer = event.answer
        assert answer is not None
        return answer


def _whole_prompt(question: str, history: list[ChatMessage], units: list[Passage], system_prompt: str,
                  loaded: LoadedModel, budget: int) -> str | None:
    """The prompt with every unit of the pinned files as a numbered source, whole, and
    as much history as fits (oldest dropped first); None when the units alone do not
    fit ``budget``. Counted once per try: a 600-page file is not re-counted page by page."""
    turns = list(history)
    while True:
        prompt = loaded.apply_chat_template(
            grounded_messages(question, turns, units, system_prompt, WHOLE_FILE_INSTRUCTIONS, None))
        if loaded.count_tokens(prompt) <= budget:
            return prompt
        if not turns:
            return None
        # Without history first: if the files do not fit even then, they are read in parts.
        turns = []


def _well_formed(text: str) -> str:
    """``text`` with each lone surrogate (from undecodable bytes in argv or a file, or a
    JSON ``"\udcff"``) replaced by U+FFFD: no filter, model or database can take one."""
    return _SURROGATE.sub("\ufffd", text)


def _title(question: str) -> str:
    title = " ".join(question.split())
    return title if len(title) <= 60 else title[:57].rstrip() + "..."


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
