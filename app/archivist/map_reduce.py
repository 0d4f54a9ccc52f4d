"""Answering from files longer than the model's context: a map-reduce pass. Qt-free.

Why: a question about a whole file ("summarise this report") must see all of it, and a
50-page PDF is about 30,000 tokens, more than a small model's context. So the file's
units (:mod:`archivist.whole_files`) are grouped into *parts* that each fit; the model
is asked the question on each part (map: short notes citing the part's numbered
sources, or "nothing relevant"); then once more over the notes, numbered by part
(reduce), for the answer. The answer cites part numbers; each cited part is mapped
back to the file and page its note cited, so the user can check the answer there.

When the notes themselves do not fit beside the question, neighbouring notes are
first combined into shorter ones (a note keeps the part numbers it cites), as often as
needed. Every model call here honours the turn's ``cancel`` event, between calls and
between tokens.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archivist.attribution import CITATION, matched_sources
from archivist.errors import ArchivistError
from archivist.prompt import cited_numbers, format_sources, strip_citations
from archivist.repetition import without_loop
from archivist.types import ChatMessage, Citation, GenerationOptions, GenerationStats, Locator, Passage
from archivist.whole_files import describe_units, text_pieces

if TYPE_CHECKING:
    from archivist.protocols import LoadedModel

NOTHING_RELEVANT = "nothing relevant"
# Tokens of one part's notes: short notes keep the reduce step within the context and
# quick (on the built-in model a note is written at about 20 tokens a second on 2 cores).
MAP_NOTE_TOKENS = 200
# Tokens kept free in every prompt beside the answer, for template tokens a count may miss.
MARGIN = 16

MAP_INSTRUCTIONS = (
    "You are reading part {part} of {parts} of the files the user chose. Write short notes "
    "from the numbered sources below that help answer the question, and cite each note's "
    "source number in brackets, like [1]. If these sources hold nothing that helps, answer "
    f"only: {NOTHING_RELEVANT}."
)
REDUCE_INSTRUCTIONS = (
    "The files the user chose were read in {parts} parts. Below are the notes taken from "
    "each part, numbered by part. Answer the question using only these notes. After each "
    "fact, cite its part number in brackets, like [2]."
)
COMBINE_INSTRUCTIONS = (
    "Below are notes taken from parts of the files the user chose, numbered by part. "
    "Combine them into shorter notes that help answer the question, and keep each note's "
    "part number in brackets, like [2]."
)


@dataclass(frozen=True)
class Part:
    """Units of the pinned files that the model reads in one call, numbered from 1."""

    number: int
    sources: tuple[Passage, ...]

    @property
    def where(self) -> str:
        return describe_units(self.sources)


@dataclass(frozen=True)
class Note:
    """What the model noted from one part (``parts`` holds its number), or several
    notes combined. A part's note is kept without its own source numbers (the reduce
    step numbers by part); a combined note cites part numbers. ``cited``: the units a
    part's note cited, which that part's citation points to."""

    parts: tuple[int, ...]
    text: str
    where: str
    cited: tuple[Passage, ...] = ()


@dataclass
class PassFigures:
    """What the pass cost: model calls, tokens in and out, seconds (for the answer's stats)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    parts: int = 0
    relevant: int = 0
    loops_cut: int = 0  # notes cut where the model began repeating itself

    def to_dict(self) -> dict[str, float]:
        return {f"map_{k}": float(v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class FilePass:
    """One map-reduce pass over ``units`` for ``question`` with ``model``.

    ``budget`` is the context the pass may fill (tokens, prompt and answer together);
    ``options`` is how the final answer is sampled (notes use the same, shorter).
    Drive it with :meth:`plan`, then :meth:`read` and :meth:`prepare` (both yield
    progress lines for the user), then stream :attr:`prompt` and cite with
    :meth:`citations`. ``stopped`` is set when ``cancel`` ended it early.
    """

    model: LoadedModel
    question: str
    system_prompt: str
    budget: int
    options: GenerationOptions
    cancel: threading.Event | None = None
    parts: list[Part] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    prompt: str = ""
    stopped: bool = False
    figures: PassFigures = field(default_factory=PassFigures)

    @property
    def note_tokens(self) -> int:
        """Tokens of one note: :data:`MAP_NOTE_TOKENS`, less in a small context (a quarter
        of it) or when the answer itself is asked to be shorter."""
        return min(MAP_NOTE_TOKENS, self.budget // 4, self.options.max_new_tokens)

    # -- map ------------------------------------------------------------------------

    def map_messages(self, part: Part, total: int) -> list[ChatMessage]:
        instructions = MAP_INSTRUCTIONS.format(part=part.number, parts=total)
        system = f"{self.system_prompt}\n\n{instructions}\n\nSources:\n{format_sources(part.sources, None)}"
        return [ChatMessage("system", system), ChatMessage("user", self.question)]

    def plan(self, units: Sequence[Passage]) -> list[Part]:
        """``units`` grouped in order into parts whose map prompt fits the budget beside
        a note; a unit too long to fit alone is cut until it does."""
        limit = self.budget - self.note_tokens - MARGIN
        count = self.model.count_tokens
        overhead = count(self.model.apply_chat_template(self.map_messages(Part(999, ()), 999)))
        if overhead >= limit:
            raise ArchivistError(f"the model's context ({self.budget} tokens) is too small to read a file in parts")
        room = limit - overhead
        pending = list(units)
        groups: list[list[Passage]] = []
        group: list[Passage] = []
        used = 0
        while pending:
            unit = pending.pop(0)
            size = count(f"[{len(group) + 1}] ({unit.path}) {unit.text}") + 2
            if size > room:
                pending[:0] = _halves(unit)
                continue
            if group and used + size > room:
                groups.append(group)
                group, used = [], 0
            group.append(unit)
            used += size
        if group:
            groups.append(group)
        # The sum of per-unit counts is an estimate: check each part's real prompt, and
        # move its last units on to the next part until it fits.
        parts: list[Part] = []
        while groups:
            group = groups.pop(0)
            while len(group) > 1 and count(self.model.apply_chat_template(
                    self.map_messages(Part(len(parts) + 1, tuple(group)), 999))) > limit:
                moved = group.pop()
                if groups:
                    groups[0].insert(0, moved)
                else:
                    groups.append([moved])
            parts.append(Part(len(parts) + 1, tuple(group)))
        self.parts = parts
        self.figures.parts = len(parts)
        return parts

    def read(self) -> Iterator[str]:
        """Ask the question of each part in turn, yielding "Reading part k of n (where)"
        before each; the notes that hold something go to :attr:`notes`."""
        total = len(self.parts)
        for part in self.parts:
            if self._cancelled():
                return
            yield f"Reading part {part.number} of {total} ({part.where})"
            note = self._generate(self.map_messages(part, total), self.note_tokens)
            if self.stopped:
                return
            if _relevant(note):
                numbers = cited_numbers(note, len(part.sources))
                cited = tuple(part.sources[n - 1] for n in numbers)
                self.notes.append(Note((part.number,), strip_citations(note), part.where, cited))
        self.figures.relevant = len(self.notes)

    # -- reduce ---------------------------------------------------------------------

    def reduce_messages(self, notes: Sequence[Note], history: Sequence[ChatMessage]) -> list[ChatMessage]:
        instructions = REDUCE_INSTRUCTIONS.format(parts=len(self.parts))
        system = f"{self.system_prompt}\n\n{instructions}\n\nNotes:\n{_format_notes(notes)}"
        return [ChatMessage("system", system), *history, ChatMessage("user", self.question)]

    def prepare(self, history: Sequence[ChatMessage]) -> Iterator[str]:
        """Build :attr:`prompt`, the reduce step's: the notes and as much of ``history``
        as fits (oldest dropped first); notes that do not fit even alone are combined
        first, yielding "Combining notes…" for each such call."""
        limit = self.budget - self.options.max_new_tokens - MARGIN
        notes = list(self.notes)
        while True:
            turns = list(history)
            while True:
                prompt = self.model.apply_chat_template(self.reduce_messages(notes, turns))
                if self.model.count_tokens(prompt) <= limit:
                    self.prompt = prompt
                    return
                if not turns:
                    break
                del turns[: 2 if len(turns) >= 2 else 1]
            combined: list[Note] = []
            batches = self._batches(notes, limit)
            if all(len(batch) == 1 for batch in batches):
                raise ArchivistError(f"the notes on the files do not fit the model's context ({self.budget} tokens)")
            for i, batch in enumerate(batches, start=1):
                if len(batch) == 1:
                    combined.append(batch[0])
                    continue
                if self._cancelled():
                    return
                yield f"Combining notes {i} of {len(batches)} ({_span(batch)})"
                messages = self._combine_messages(batch)
                text = self._generate(messages, self.note_tokens)
                if self.stopped:
                    return
                parts = tuple(p for note in batch for p in note.parts)
                kept = [n for n in cited_numbers(text, len(self.parts)) if n in parts]
                combined.append(Note(parts, _keep_citations(text, kept), _span(batch)))
            notes = combined

    def _combine_messages(self, notes: Sequence[Note]) -> list[ChatMessage]:
        system = f"{self.system_prompt}\n\n{COMBINE_INSTRUCTIONS}\n\nNotes:\n{_format_notes(notes)}"
        return [ChatMessage("system", system), ChatMessage("user", self.question)]

    def _batches(self, notes: Sequence[Note], limit: int) -> list[list[Note]]:
        """Neighbouring notes grouped so each group's combine prompt fits beside a note."""
        room = min(limit, self.budget - self.note_tokens - MARGIN)
        batches: list[list[Note]] = []
        for note in notes:
            if batches and self.model.count_tokens(
                    self.model.apply_chat_template(self._combine_messages([*batches[-1], note]))) <= room:
                batches[-1].append(note)
            else:
                batches.append([note])
        return batches

    def citations(self, answer: str, fallback: int = 2) -> list[Citation]:
        """The parts the answer cites, each pointing to the file and page its note cited
        (else the part's first unit). None cited: the parts whose words the answer's
        sentences repeat (``matched``, one per part, see :mod:`archivist.attribution`),
        else the first ``fallback`` parts with notes, both marked ``cited=False``, as
        :func:`archivist.prompt.make_citations` does.

        Words are matched to the pages first (a sentence copied from the file), then to
        the notes: the answer was written from the notes, not the pages, and a page of a
        report shares its template's words with forty others while its part's note is
        a few sentences of its own. A matched note points to the page it cited, else
        the page whose words it repeats, else its part's first page."""
        parts = {p.number: p for p in self.parts}
        cited_by = {note.parts[0]: note.cited for note in self.notes if len(note.parts) == 1}
        numbers = [n for n in cited_numbers(answer, len(self.parts)) if n in parts]
        cited = bool(numbers)
        chosen: dict[int, Passage] = {}
        if not cited:
            noted = sorted({n for note in self.notes for n in note.parts if n in parts})
            units = [(n, unit) for n in noted for unit in parts[n].sources]
            for i in matched_sources(answer, [unit.text for _, unit in units]):
                n, unit = units[i - 1]
                chosen.setdefault(n, unit)
            notes = [note for note in self.notes if len(note.parts) == 1 and note.parts[0] in parts]
            for i in matched_sources(answer, [note.text for note in notes]):
                note = notes[i - 1]
                chosen.setdefault(note.parts[0], _page_of(note, parts[note.parts[0]]))
            numbers = list(chosen) or [note.parts[0] for note in self.notes][:fallback]
        out = []
        for n in numbers:
            unit = chosen.get(n) or (cited_by.get(n) or parts[n].sources)[0]
            out.append(Citation(n=n, path=unit.path, page=unit.locator.page, start=unit.locator.start,
                                end=unit.locator.end, snippet=" ".join(unit.text.split())[:300], score=unit.score,
                                cited=cited, matched=n in chosen))
        return out

    # -- the model ------------------------------------------------------------------

    def _cancelled(self) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            self.stopped = True
        return self.stopped

    def _generate(self, messages: Sequence[ChatMessage], max_new_tokens: int) -> str:
        """The model's whole answer to ``messages`` (a note: not shown, so not streamed),
        cut where it starts repeating itself (:mod:`archivist.repetition`)."""
        stats = GenerationStats()
        options = dataclasses.replace(self.options, max_new_tokens=min(max_new_tokens, self.options.max_new_tokens))
        started = time.perf_counter()
        stream = self.model.stream(self.model.apply_chat_template(messages), options, stats, self.cancel)
        try:
            text, looped = without_loop(stream)
            if looped:
                self.figures.loops_cut += 1
        finally:
            if isinstance(stream, Generator):
                stream.close()
            self.figures.calls += 1
            self.figures.prompt_tokens += stats.prompt_tokens
            self.figures.completion_tokens += stats.completion_tokens
            self.figures.seconds += time.perf_counter() - started
        if stats.finish_reason == "cancelled" or self._cancelled():
            self.stopped = True
        return text


def _page_of(note: Note, part: Part) -> Passage:
    """The unit a part's note stands for: the one it cited, else the one whose words it
    repeats (:func:`matched_sources`), else the part's first."""
    if note.cited:
        return note.cited[0]
    found = matched_sources(note.text, [unit.text for unit in part.sources])
    return part.sources[found[0] - 1] if found else part.sources[0]


def _relevant(note: str) -> bool:
    said = " ".join(note.lower().split()).strip(" .!\"'*")
    return bool(said) and not said.startswith(NOTHING_RELEVANT)


def _format_notes(notes: Sequence[Note]) -> str:
    lines = []
    for note in notes:
        if len(note.parts) == 1:
            lines.append(f"[{note.parts[0]}] ({note.where}) {' '.join(note.text.split())}")
        else:
            lines.append(f"({note.where}) {' '.join(note.text.split())}")
    return "\n\n".join(lines)


def _span(notes: Sequence[Note]) -> str:
    numbers = [p for note in notes for p in note.parts]
    return f"parts {min(numbers)}–{max(numbers)}"


def _keep_citations(text: str, kept: Sequence[int]) -> str:
    """A combined note with only the citations of parts it combined (a number the model
    made up would point the answer at a part it never saw in these notes)."""
    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"[,;]", match.group(1)) if n.strip().isdigit()]
        shown = [str(n) for n in numbers if n in kept]
        return f"[{', '.join(shown)}]" if shown else ""

    return CITATION.sub(keep, text).strip()


def _halves(unit: Passage) -> list[Passage]:
    """``unit`` cut in two at a boundary near its middle, each half keeping its offsets."""
    text = unit.text
    if len(text) < 2:
        raise ArchivistError("the model's context is too small to read a file in parts")
    out = []
    for start, end in text_pieces(text, max(1, (len(text) + 1) // 2)):
        piece = text[start:end].strip()
        if piece:
            base = unit.locator.start
            locator = Locator(unit.locator.page, unit.locator.section, base + start, base + end)
            out.append(dataclasses.replace(unit, text=piece, locator=locator))
    return out


def pass_budget(context_length: int, preference: Callable[[str, object], object]) -> int:
    """Tokens a whole-file turn may fill: the model's context, or less when the user's
    ``file_context_budget`` setting says so (a long prompt is slow on a CPU)."""
    wanted = preference("file_context_budget", None)
    try:
        chosen = int(wanted) if wanted is not None else context_length  # type: ignore[call-overload]
    except (TypeError, ValueError):
        chosen = context_length
    return max(256, min(context_length, chosen))
