"""The core's use of safety filters: one verdict from many filters, and streamed output
held back to sentence boundaries so no unscreened text ever reaches the user.

Qt-free. The assistant builds one :class:`Screener` per session from the host's
``safety_filters()`` contributions. A filter that raises or outlasts its time limit
fails closed: that text is withheld (:func:`failure_verdict`), the error is recorded
against its plugin, and the filter stays on for the next text.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from archivist.errors import ArchivistError, PluginFailure
from archivist.plugins import Contribution, PluginHost
from archivist.protocols import SafetyFilter
from archivist.types import Action, Passage, Span, Stage, Verdict

log = logging.getLogger(__name__)

# A sentence ends at . ! ? (with closing quotes/brackets) followed by whitespace, or at a
# line break. The character after the punctuation must have arrived, so "3.14" and
# "a@b.com" are never cut in the middle.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
MAX_HOLD = 400  # characters held without a boundary before cutting at a space
_LIST_MARK = re.compile(r"\s*(?:\d{1,3}|[a-zA-Z])[.)]")


@dataclass(frozen=True)
class PassageVerdict(Verdict):
    """A verdict on a retrieved passage, as the answer reports and stores it: which file
    (and page) the passage came from, never the passage's text (``text`` is None)."""

    stage: str = Stage.PASSAGE.value
    path: str = ""
    page: int | None = None


# What a text is withheld as when a filter could not screen it, per stage.
_UNSCREENED = {
    Stage.INPUT: "I can't answer this",
    Stage.PASSAGE: "A passage from your documents was left out",
    Stage.OUTPUT: "I stopped this answer",
}
UNSCREENED = "unscreened"  # the category of a verdict a failing filter gave


def failure_verdict(filter_name: str, stage: Stage, failure: ArchivistError) -> Verdict:
    """The verdict for a text that filter ``filter_name`` failed to screen at ``stage``:
    a block, saying which filter and what went wrong (the host's :class:`PluginFailure`,
    or an ArchivistError the filter raised itself). Its score is 0 so that a filter
    that did screen the text and blocked it has its own reason shown first."""
    error = getattr(failure, "error", None)
    what = error.message if error is not None else f"{type(failure).__name__}: {failure}"
    reason = f"{_UNSCREENED[Stage(stage)]}: the safety filter {filter_name} could not check it ({what})."
    return Verdict(Action.BLOCK, (UNSCREENED,), 0.0, (), reason, reason, filter_name)


def passage_verdict(passage: Passage, verdict: Verdict) -> PassageVerdict:
    """``verdict`` on ``passage`` as the answer keeps it: where the passage is from, in
    the reason and as fields, and neither the passage's text nor its spans."""
    where = passage.path + (f" (page {passage.locator.page})" if passage.locator.page else "")
    unscreened = _UNSCREENED[Stage.PASSAGE]
    if verdict.reason.startswith(unscreened):  # a filter that failed (failure_verdict)
        reason = f"A passage from {where} was left out{verdict.reason[len(unscreened):]}"
    else:
        done = {Action.BLOCK: "left out", Action.REDACT: "partly removed", Action.WARN: "flagged"}
        reason = f"A passage from {where} was {done.get(verdict.action, 'screened')}. {verdict.reason}".strip()
    return PassageVerdict(verdict.action, verdict.categories, verdict.score, (), reason, None,
                          verdict.filter_name, path=passage.path, page=passage.locator.page)


@dataclass(frozen=True)
class StreamEvent:
    """One screened piece of the answer: ``text`` is what may be shown ("" when blocked
    text was withheld), ``verdict`` the decision, ``stopped`` True on the event that ends
    the stream because of a block, ``delay_ms`` the screening time this piece added."""

    text: str
    verdict: Verdict
    source: str = ""
    stopped: bool = False
    delay_ms: float = 0.0


class Screener:
    """All registered safety filters combined: the strictest action wins."""

    def __init__(self, filters: Sequence[Contribution[SafetyFilter]], host: PluginHost) -> None:
        self.filters = list(filters)
        self.host = host
        self.delays_ms: list[float] = []

    def screen(self, text: str, stage: Stage, context: str = "") -> Verdict:
        """One verdict for ``text`` at ``stage`` from every enabled filter.

        ``context`` is what came just before ``text`` (in a streamed answer, the
        sentence before it), handed to the filters whose ``screen`` takes a ``context``
        keyword (:func:`reads_context`) and to no other: a filter written without it
        gets the call it was written for.

        A filter that raises, outlasts its time limit or answers with something that is
        not a Verdict blocks ``text`` (:func:`failure_verdict`): what was not screened is
        not shown. Its plugin stays on (the host records the error), so the next text is
        screened by it again.
        """
        verdicts: list[Verdict] = []
        for contribution in self.filters:
            if not self.host.enabled(contribution.plugin):
                continue
            name = str(getattr(contribution.obj, "name", "") or contribution.plugin)
            try:
                if context and reads_context(type(contribution.obj)):
                    verdict = self.host.run(contribution, "screen", text, stage, context=context)
                else:
                    verdict = self.host.run(contribution, "screen", text, stage)
                if not isinstance(verdict, Verdict):
                    error = self.host.record_error(contribution.plugin, f"{type(contribution.obj).__name__}.screen",
                                                   TypeError(f"screen returned {type(verdict).__name__}, not a Verdict"))
                    raise PluginFailure(error.message, error)
            except ArchivistError as exc:  # PluginFailure, or one the filter raised itself
                log.warning("%s", exc)
                verdict = failure_verdict(name, stage, exc)
            verdicts.append(verdict)
        return combine(text, verdicts)

    def screen_passages(self, passages: Iterable[Passage]) -> list[Passage]:
        """Passages fit for the prompt: injected instructions neutralised, blocked ones dropped."""
        return self.check_passages(passages)[0]

    def check_passages(self, passages: Iterable[Passage]) -> tuple[list[Passage], list[PassageVerdict]]:
        """:meth:`screen_passages`, and the verdicts that were not "allow", each naming
        the passage's file and page (:func:`passage_verdict`), for the answer to report."""
        kept: list[Passage] = []
        verdicts: list[PassageVerdict] = []
        for passage in passages:
            verdict = self.screen(passage.text, Stage.PASSAGE)
            if verdict.action is not Action.ALLOW:
                verdicts.append(passage_verdict(passage, verdict))
            if verdict.action is Action.BLOCK:
                continue
            text = verdict.text if verdict.action is Action.REDACT and verdict.text is not None else passage.text
            kept.append(passage if text == passage.text else dataclasses.replace(passage, text=text))
        return kept, verdicts

    def screen_stream(self, chunks: Iterable[str]) -> Iterator[StreamEvent]:
        """Screen streamed model text sentence by sentence at :attr:`Stage.OUTPUT`,
        each with the sentence before it as its ``context``.

        Text is held until a sentence boundary (or the end of the stream), screened, and
        only then yielded: the original when allowed or warned, the redacted text when
        redacted, and on a block the one-sentence explanation, after which the stream
        stops (the caller should cancel generation when it sees ``stopped``).
        """
        buffer = ""
        before = ""  # the previous sentence, the context of the next one
        for chunk in chunks:
            if not chunk:
                continue
            buffer += chunk
            while True:
                cut = sentence_end(buffer)
                if cut is None:
                    break
                sentence, buffer = buffer[:cut], buffer[cut:]
                event = self._screen_sentence(sentence, before)
                yield event
                if event.stopped:
                    return
                before = sentence.strip() or before
        if buffer:
            yield self._screen_sentence(buffer, before)

    def _screen_sentence(self, sentence: str, before: str = "") -> StreamEvent:
        start = time.perf_counter()
        # Leading whitespace is kept out of the filters' view but given back to the reader.
        body = sentence.lstrip()
        lead = sentence[: len(sentence) - len(body)]
        verdict = self.screen(body, Stage.OUTPUT, context=before) if body.strip() else Verdict.allow(body)
        delay = (time.perf_counter() - start) * 1000.0
        self.delays_ms.append(delay)
        if verdict.action is Action.BLOCK:
            message = verdict.text or "I stopped this answer because it was flagged by the safety filter."
            return StreamEvent(lead + message, verdict, sentence, True, delay)
        if verdict.action is Action.REDACT and verdict.text is not None:
            return StreamEvent(lead + verdict.text, verdict, sentence, False, delay)
        return StreamEvent(sentence, verdict, sentence, False, delay)


@functools.cache
def reads_context(kind: type[SafetyFilter]) -> bool:
    """Whether the filter class's ``screen`` takes a ``context`` keyword (docs/changelog.md, Unreleased)."""
    try:
        parameters = inspect.signature(kind.screen).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    context = parameters.get("context")
    return context is not None and context.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                    inspect.Parameter.POSITIONAL_OR_KEYWORD)


def sentence_end(buffer: str) -> int | None:
    """Where the first complete sentence of ``buffer`` ends, or None to keep waiting.

    A list item's number or letter ("1. ", "b) ") at the start of a line is not a
    sentence: the item is screened whole, and the sentence before it (its context) is
    the one before the item, not "1."."""
    for m in _BOUNDARY.finditer(buffer):
        if m.group() != "\n" and _LIST_MARK.fullmatch(buffer, buffer.rfind("\n", 0, m.start()) + 1, m.end()):
            continue
        return m.end()
    if len(buffer) > MAX_HOLD:
        space = buffer.rfind(" ", 0, MAX_HOLD)
        return space + 1 if space > 0 else MAX_HOLD
    return None


def combine(text: str, verdicts: Sequence[Verdict]) -> Verdict:
    """Merge verdicts: strictest action (and its text) wins, categories and spans unite.

    When several filters redact, each filter's text is its own redaction of the original,
    so only the strictest filter's text is used; the union of spans is reported.
    """
    if not verdicts:
        return Verdict.allow(text)
    strictest = max(verdicts, key=lambda v: (v.action.severity, v.score))
    categories: list[str] = []
    spans: list[Span] = []
    for v in sorted(verdicts, key=lambda v: -v.action.severity):
        for c in v.categories:
            if c not in categories:
                categories.append(c)
        for s in v.spans:
            if s not in spans:
                spans.append(s)
    out = strictest.text if strictest.text is not None else text
    if strictest.action in (Action.ALLOW, Action.WARN):
        out = text
    reasons = [v.reason for v in verdicts if v.reason and v.action is not Action.ALLOW]
    return Verdict(
        action=strictest.action,
        categories=tuple(categories),
        score=max(v.score for v in verdicts),
        spans=tuple(sorted(spans, key=lambda s: (s.start, s.end))),
        reason=strictest.reason or (reasons[0] if reasons else ""),
        text=out,
        filter_name="+".join(v.filter_name for v in verdicts if v.filter_name and v.action is not Action.ALLOW)
        or strictest.filter_name,
    )
