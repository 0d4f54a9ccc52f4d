"""Plain data types shared by the core, the front ends and plugins.

They are frozen dataclasses with no behaviour beyond conversion to JSON-ready dicts, so
a plugin written against them keeps working whichever front end (CLI, GUI, Python)
drives the assistant, and so they can cross threads and be persisted without surprises.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


class Action(str, Enum):
    """What a safety filter decided to do with a piece of text, mildest first."""

    ALLOW = "allow"
    WARN = "warn"
    REDACT = "redact"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.ALLOW: 0, Action.WARN: 1, Action.REDACT: 2, Action.BLOCK: 3}


class Stage(str, Enum):
    """Where in a chat turn a piece of text is screened."""

    INPUT = "input"
    PASSAGE = "passage"
    OUTPUT = "output"


def _as_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Enum):
            value = value.value
        elif dataclasses.is_dataclass(value):
            value = _as_dict(value)
        elif isinstance(value, (list, tuple)):
            value = [_as_dict(v) if dataclasses.is_dataclass(v) else v for v in value]
        out[f.name] = value
    return out


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation, in the role vocabulary chat templates expect."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Locator:
    """Where inside a document a piece of text sits, for citations a user can follow.

    ``page`` is 1-based for paged formats; ``section`` names a heading, slide or e-mail
    part where the format has one. ``start``/``end`` are character offsets into the text
    the loader produced for that unit.
    """

    page: int | None = None
    section: str | None = None
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class DocumentPart:
    """A unit of text a loader produced (a page, a slide, a section) with its locator."""

    text: str
    locator: Locator = field(default_factory=Locator)


@dataclass(frozen=True)
class Document:
    """A file the user gave Archivist, as text parts plus what identifies it."""

    path: str
    parts: tuple[DocumentPart, ...]
    title: str | None = None
    mime_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.parts)


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of a document, ranked for a query."""

    text: str
    path: str
    locator: Locator = field(default_factory=Locator)
    score: float = 0.0
    title: str | None = None
    chunk_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class Citation:
    """A source of the answer, numbered ``[n]`` as in the prompt, with enough to show and open it.

    ``cited`` is False for a source the answer does not cite: when it cites none of
    its sources (or only numbers that do not exist), the best ones are still listed so
    the user can check the answer, but as *consulted*, never as citations. Among those,
    ``matched`` marks the sources whose words a sentence of the answer repeats
    (:mod:`archivist.attribution`): found by Archivist, not written by the model.
    """

    n: int
    path: str
    page: int | None
    start: int
    end: int
    snippet: str
    score: float
    cited: bool = True
    matched: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class Span:
    """A character range of screened text that a verdict concerns."""

    start: int
    end: int
    category: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class Verdict:
    """A safety filter's decision about one piece of text.

    ``text`` is what may be shown or used in its place: the input unchanged when
    allowed or warned, with spans masked when redacted, and a one-sentence explanation
    for the user when blocked. ``reason`` says why in words a user understands.
    """

    action: Action
    categories: tuple[str, ...] = ()
    score: float = 0.0
    spans: tuple[Span, ...] = ()
    reason: str = ""
    text: str | None = None
    filter_name: str = ""

    @staticmethod
    def allow(text: str | None = None, filter_name: str = "") -> Verdict:
        return Verdict(Action.ALLOW, text=text, filter_name=filter_name)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class GenerationOptions:
    """How to sample one answer. Defaults favour faithful, grounded answers."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 50
    repetition_penalty: float = 1.0


@dataclass
class GenerationStats:
    """What one generation cost, filled in as it runs (the CLI's --json reports it)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None
    total_ms: float = 0.0
    tokens_per_s: float | None = None
    finish_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class ModelInfo:
    """An installed model a backend can load: where it is and what it is."""

    id: str
    path: str
    name: str
    backend: str = "onnxruntime-genai"
    context_length: int = 2048
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class LibrarySource:
    """A folder or file the user added to a library, and what it holds now.

    ``path`` is the source's key (absolute, as :meth:`archivist.Library.add_source`
    returned it); ``files`` were indexed, ``skipped`` could not be read (see
    :meth:`archivist.Library.skipped`), ``passages`` are searchable from it.
    ``missing``: the folder or file is gone from the disk (``archivist sources prune``
    removes it; its passages are not cited meanwhile).
    """

    path: str
    added_at: str = ""
    files: int = 0
    skipped: int = 0
    passages: int = 0
    missing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class SkippedFile:
    """A file a library left out, and why, in words a user understands."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class SyncProgress:
    """How far a sync is, for a progress bar: ``done`` of the ``total`` files of ``root``,
    reading ``path`` now ("" once ``root`` is finished). Inside one slow file, ``part_done``
    of its ``part_total`` parts are done (0 of 0 otherwise), so a 600-page PDF shows
    progress inside itself; ``stage`` says what those parts are: ``"embedding"``, passages
    embedded (a library reports it once the file's passages are stored and found by their
    words, so front ends say "searchable by keyword"), or ``"ocr"``, scanned pages read by OCR."""

    root: str
    done: int
    total: int
    path: str = ""
    part_done: int = 0
    part_total: int = 0
    stage: str = "embedding"


@dataclass
class SyncReport:
    """What one sync did. ``cancelled``: it stopped early when asked; what was indexed
    before stays, and the file being read then is left as it was, for the next sync."""

    indexed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    passages: int = 0
    pages: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    def add(self, other: SyncReport) -> None:
        """Fold ``other`` (another root's report) into this one."""
        self.indexed += other.indexed
        self.unchanged += other.unchanged
        self.removed += other.removed
        self.skipped += other.skipped
        self.passages += other.passages
        self.pages += other.pages
        self.seconds += other.seconds
        self.cancelled = self.cancelled or other.cancelled

    def to_dict(self) -> dict[str, Any]:
        out = _as_dict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class PluginError:
    """An exception a plugin raised, kept so the user can be shown who failed and how."""

    plugin: str
    where: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)
