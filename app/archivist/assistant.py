"""One chat turn, from the user's text to a persisted, screened, cited answer. Qt-free.

screen input -> retrieve -> screen passages -> pack prompt -> stream from the model ->
screen output sentence by sentence -> persist -> citations. The turn is a generator of
events so the CLI can print and the GUI can render as text arrives; ``ask`` drains it
for callers who only want the result.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from archivist.collection_choice import Choice, check_choice, collection_of, known_collections
from archivist.errors import PluginFailure
from archivist.prompt import DEFAULT_SYSTEM_PROMPT, make_citations, pack_prompt
from archivist.protocols import Countable
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
        }


@dataclass(frozen=True)
class TurnEvent:
    """Something the front end should show now.

    kinds: ``sources`` (passages found), ``text`` (a piece of the answer, already
    screened), ``notice`` (a safety or plugin message), ``done`` (the final Answer).
    """

    kind: Literal["sources", "text", "notice", "done"]
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
    ) -> None:
        self.host = host
        self.load_model = load_model
        self.conversations = conversations
        self.preference = preference

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
    ) -> Iterator[TurnEvent]:
        """Run one turn, yielding events as they happen; the last one is ``done``.

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

        loaded = self.load_model(model)
        stats = GenerationStats()

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
        if use_documents:
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

        budget = min(loaded.info.context_length, int(self.preference("context_budget", DEFAULT_CONTEXT_BUDGET)))
        packed = pack_prompt(
            question_for_model,
            history=history,
            passages=found,
            system_prompt=str(self.preference("system_prompt", DEFAULT_SYSTEM_PROMPT)),
            template=loaded.apply_chat_template,
            count_tokens=loaded.count_tokens,
            budget=budget - options.max_new_tokens - CONTEXT_MARGIN,
        )
        found = list(packed.sources)
        timings["before_generation_ms"] = (time.perf_counter() - started) * 1000.0

        shown: list[str] = []
        raw = loaded.stream(packed.prompt, options, stats, cancel)
        try:
            for event in screener.screen_stream(raw):
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


def _well_formed(text: str) -> str:
    """``text`` with each lone surrogate (from undecodable bytes in argv or a file, or a
    JSON ``"\udcff"``) replaced by U+FFFD: no filter, model or database can take one."""
    return _SURROGATE.sub("\ufffd", text)


def _title(question: str) -> str:
    title = " ".join(question.split())
    return title if len(title) <= 60 else title[:57].rstrip() + "..."


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
