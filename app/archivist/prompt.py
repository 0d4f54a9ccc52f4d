"""Packing a question, its sources and the conversation into the model's context.

Small models follow short, concrete instructions best, so the system prompt is brief
and the sources come numbered right before the question. Everything is counted with
the model's own tokenizer: sources are dropped from the least relevant end, then old
turns from the oldest end, until the prompt fits beside the answer's token budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from archivist.attribution import CITATION, matched_sources
from archivist.types import ChatMessage, Citation, Passage

DEFAULT_SYSTEM_PROMPT = (
    "You are Archivist, a private assistant running on the user's own computer. "
    "Answer clearly and briefly."
)
GROUNDED_INSTRUCTIONS = (
    "Answer the question using only the numbered sources below. "
    "After each fact, cite its source number in brackets, like [1]. "
    "If the sources do not contain the answer, say you could not find it in the documents."
)
WHOLE_FILE_INSTRUCTIONS = (
    "Answer the question using only the numbered sources below: they are the pages of the "
    "files the user chose, in order. After each fact, cite its source number in brackets, like [1]."
)
# Characters of one source kept in the prompt; long chunks are cut rather than skipped.
MAX_SOURCE_CHARS = 1200


@dataclass(frozen=True)
class PackedPrompt:
    """The prompt text plus which sources and history turns made it in."""

    prompt: str
    messages: tuple[ChatMessage, ...]
    sources: tuple[Passage, ...]
    history_turns: int
    tokens: int


def format_sources(passages: Sequence[Passage], max_chars: int | None = MAX_SOURCE_CHARS) -> str:
    """Sources as the model sees them: ``[n] (file, page) text``, one per paragraph; each
    cut at ``max_chars`` (None: whole, as the pages of a pinned file are given)."""
    lines = []
    for n, passage in enumerate(passages, start=1):
        lines.append(f"[{n}] ({source_place(passage)}) {source_text(passage, max_chars)}")
    return "\n\n".join(lines)


def source_place(passage: Passage) -> str:
    """Where a source is, as the model reads it: "file, page n"."""
    where = passage.title or passage.path.replace("\\", "/").rsplit("/", 1)[-1]
    if passage.locator.page:
        where += f", page {passage.locator.page}"
    return where


def source_text(passage: Passage, max_chars: int | None = MAX_SOURCE_CHARS) -> str:
    """A source's text on one line, cut at ``max_chars`` (None: whole)."""
    text = " ".join(passage.text.split())
    return text if max_chars is None else text[:max_chars]


def pack_prompt(
    question: str,
    *,
    history: Sequence[ChatMessage],
    passages: Sequence[Passage],
    system_prompt: str,
    template: Callable[[Sequence[ChatMessage]], str],
    count_tokens: Callable[[str], int],
    budget: int,
) -> PackedPrompt:
    """The largest prompt that fits ``budget`` tokens, keeping the best sources first."""
    sources = list(passages)
    turns = list(history)
    while True:
        messages = _messages(question, turns, sources, system_prompt)
        prompt = template(messages)
        tokens = count_tokens(prompt)
        if tokens <= budget or (not sources and not turns):
            return PackedPrompt(prompt, tuple(messages), tuple(sources), len(turns), tokens)
        if len(sources) > 1 or (sources and not turns):
            sources.pop()
        else:
            # Drop the oldest exchange (a user turn and the answer that followed it).
            del turns[: 2 if len(turns) >= 2 else 1]


def _messages(
    question: str,
    history: Sequence[ChatMessage],
    sources: Sequence[Passage],
    system_prompt: str,
) -> list[ChatMessage]:
    return grounded_messages(question, history, sources, system_prompt)


def grounded_messages(
    question: str,
    history: Sequence[ChatMessage],
    sources: Sequence[Passage],
    system_prompt: str,
    instructions: str = GROUNDED_INSTRUCTIONS,
    max_chars: int | None = MAX_SOURCE_CHARS,
) -> list[ChatMessage]:
    """The messages of a turn answered from numbered ``sources`` (none: the model alone)."""
    # Sources go in the system message and the question stands alone as the user's
    # turn: measured on the 135M built-in model, this keeps it on the sources far more
    # often than sources pasted into the user's message (it then tends to list them).
    system = system_prompt
    if sources:
        system = f"{system_prompt}\n\n{instructions}\n\nSources:\n{format_sources(sources, max_chars)}"
    return [ChatMessage("system", system), *history, ChatMessage("user", question)]


def strip_citations(text: str) -> str:
    """``text`` without its ``[n]`` citations (a note's own numbers, before they are
    given to a model that numbers things differently)."""
    text = re.sub(r"[ \t]{2,}", " ", CITATION.sub("", text))
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", text).strip()


def cited_numbers(answer: str, available: int) -> list[int]:
    """Source numbers the answer cites as [n] or [n, m], in first-cited order."""
    seen: list[int] = []
    for match in CITATION.finditer(answer):
        for part in re.split(r"[,;]", match.group(1)):
            n = int(part)
            if 1 <= n <= available and n not in seen:
                seen.append(n)
    return seen


def make_citations(answer: str, sources: Sequence[Passage], fallback: int = 2) -> list[Citation]:
    """Citations for the sources the answer cites, in first-cited order.

    An answer that cites none of its sources still comes with sources the user can check
    it against, marked ``cited=False`` because the answer attributes nothing to them:
    those whose words its sentences repeat (``matched``, see :mod:`archivist.attribution`),
    else the top ``fallback`` of what the model was given (consulted).
    """
    numbers = cited_numbers(answer, len(sources))
    cited = bool(numbers)
    matched = False
    if not cited:
        numbers = matched_sources(answer, [p.text for p in sources])
        matched = bool(numbers)
    if not cited and not matched:
        numbers = list(range(1, min(fallback, len(sources)) + 1))
    citations = []
    for n in numbers:
        p = sources[n - 1]
        citations.append(
            Citation(
                n=n,
                path=p.path,
                page=p.locator.page,
                start=p.locator.start,
                end=p.locator.end,
                snippet=" ".join(p.text.split())[:300],
                score=p.score,
                cited=cited,
                matched=matched,
            )
        )
    return citations
