"""An answer's Markdown, cut into prose and code blocks, with citations made into links.

Qt renders the prose (``QLabel`` speaks Markdown); code blocks are cut out here so each
can get its own monospace box and Copy button, which Qt's Markdown renderer cannot give.
The cut must work on half-streamed text too: an opened fence with no closing line yet is
a code block still growing, not prose. Pure Python, so it is tested without a display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# A fence line: up to 3 spaces, ``` or ~~~ (3 or more), an optional info string.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")
# The citation forms the prompt asks for and the core recognises: [1] or [1, 2].
_CITATION = re.compile(r"(?<![\\\]])\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\](?!\()")

CITE_SCHEME = "cite"


@dataclass(frozen=True)
class Segment:
    """A run of prose, or one fenced code block (``closed`` once its fence has ended)."""

    kind: Literal["text", "code"]
    text: str
    language: str = ""
    closed: bool = True


def split_segments(markdown: str) -> list[Segment]:
    """Prose and code blocks in order; an unterminated fence runs to the end."""
    segments: list[Segment] = []
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None
    language = ""
    for line in markdown.split("\n"):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                if prose:
                    _add_prose(segments, prose)
                    prose = []
                fence, language, code = match.group(1), match.group(2), []
            else:
                prose.append(line)
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) and not match.group(2):
            segments.append(Segment("code", "\n".join(code), language, closed=True))
            fence = None
        else:
            code.append(line)
    if fence is not None:
        segments.append(Segment("code", "\n".join(code), language, closed=False))
    elif prose:
        _add_prose(segments, prose)
    return segments


def _add_prose(segments: list[Segment], lines: list[str]) -> None:
    text = "\n".join(lines).strip("\n")
    if text.strip():
        segments.append(Segment("text", text))


def link_citations(markdown: str, available: int) -> str:
    """``[n]`` and ``[n, m]`` become ``cite:n`` links, for numbers 1..``available``.

    Numbers outside the sources (the model can invent them) stay plain text, so a link
    always leads somewhere. Code spans are left alone.
    """
    if available <= 0:
        return markdown
    pieces = re.split(r"(`[^`]*`)", markdown)
    for i in range(0, len(pieces), 2):
        pieces[i] = _CITATION.sub(lambda m: _link(m, available), pieces[i])
    return "".join(pieces)


def _link(match: re.Match[str], available: int) -> str:
    numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
    if not all(1 <= n <= available for n in numbers):
        return match.group(0)
    inner = ", ".join(f"[{n}]({CITE_SCHEME}:{n})" for n in numbers)
    return f"\\[{inner}\\]"


def citation_number(link: str) -> int | None:
    """The ``n`` of a ``cite:n`` link; None for any other link."""
    prefix = CITE_SCHEME + ":"
    if link.startswith(prefix) and link[len(prefix):].isdigit():
        return int(link[len(prefix):])
    return None
