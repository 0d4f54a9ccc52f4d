"""Reading order for the lines OCR found on a page: columns before rows, lines joined.

The OCR engine returns one box per stretch of text, ordered top to bottom. On a page of
two columns that interleaves them (a line of the left column, then the line beside it on
the right), so a passage would mix two articles. This puts the boxes back in reading
order with a recursive XY cut (Nagy and Seth, 1984): a block of boxes is cut in two at
the widest band of white that crosses all of it, between columns (read left to right)
or between paragraphs (read top to bottom), until none is left; the boxes of a block
are then grouped into lines. A table whose columns are separated by wider white than
its rows is read column by column; prose, the common case in scans, is what this is for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

# A gap between columns is at least this many median line heights wide; a gap between
# paragraphs at least this many tall (the space between two lines of one paragraph is
# less, so lines stay together and a column beside them can still be split off).
COLUMN_GAP = 0.75
PARAGRAPH_GAP = 0.5
_MAX_DEPTH = 64  # a hostile page of boxes cannot recurse without end


@dataclass(frozen=True)
class Box:
    """A stretch of text the engine found, with its bounding rectangle in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)


def box_of(points: Sequence[Sequence[float]], text: str) -> Box:
    """The upright rectangle around a quadrilateral (the engine's four corners)."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return Box(min(xs), min(ys), max(xs), max(ys), text)


def reading_order(boxes: Sequence[Box]) -> str:
    """The text of ``boxes`` in reading order: lines joined by a newline, blocks
    (columns, paragraphs) by a blank line."""
    boxes = [b for b in boxes if b.text.strip()]
    if not boxes:
        return ""
    line = median(b.height for b in boxes)
    blocks = _cut(boxes, line, 0)
    return "\n\n".join("\n".join(_lines(block, line)) for block in blocks)


def _cut(boxes: list[Box], line: float, depth: int) -> list[list[Box]]:
    """One cut at a time, at the widest band of white that crosses the whole block (a
    gap between columns at least :data:`COLUMN_GAP` lines wide, between paragraphs
    :data:`PARAGRAPH_GAP` lines tall): cutting at every gap at once would cut a page of
    two columns wherever both happen to leave a paragraph's gap at the same height."""
    if len(boxes) < 2 or depth >= _MAX_DEPTH:
        return [boxes]
    best: tuple[float, bool, float] | None = None  # (width, vertical, where)
    for vertical, least in ((True, COLUMN_GAP * line), (False, PARAGRAPH_GAP * line)):
        gap = _widest_gap(boxes, vertical)
        if gap is not None and gap[0] >= least and (best is None or gap[0] > best[0]):
            best = (gap[0], vertical, gap[1])
    if best is None:
        return [boxes]
    _, vertical, where = best
    first = [b for b in boxes if (b.x1 if vertical else b.y1) <= where]
    rest = [b for b in boxes if (b.x1 if vertical else b.y1) > where]
    return _cut(first, line, depth + 1) + _cut(rest, line, depth + 1)


def _widest_gap(boxes: list[Box], vertical: bool) -> tuple[float, float] | None:
    """The widest band of white crossing all ``boxes`` (``vertical``: running top to
    bottom) as (its width, where it starts), or None when there is none."""
    spans = sorted((b.x0, b.x1) if vertical else (b.y0, b.y1) for b in boxes)
    best = None
    reach = spans[0][1]
    for start, end in spans[1:]:
        if start > reach and (best is None or start - reach > best[0]):
            best = (start - reach, reach)
        reach = max(reach, end)
    return best


def _lines(boxes: list[Box], line: float) -> list[str]:
    """The boxes of one block as lines: a box whose middle lies within the line being
    built joins it; each line reads left to right."""
    rows: list[list[Box]] = []
    for b in sorted(boxes, key=lambda b: (b.y0 + b.y1) / 2):
        middle = (b.y0 + b.y1) / 2
        if rows:
            last = rows[-1]
            top = min(x.y0 for x in last)
            bottom = max(x.y1 for x in last)
            if top <= middle <= bottom and middle - (top + bottom) / 2 < line / 2:
                last.append(b)
                continue
        rows.append([b])
    return [" ".join(b.text.strip() for b in sorted(row, key=lambda b: b.x0)) for row in rows]
