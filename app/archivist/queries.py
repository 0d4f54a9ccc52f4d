"""Questions or search queries read from a JSON-lines file, for evaluations.

``archivist ask --jsonl FILE`` and ``archivist search --jsonl FILE`` read one query per
line, either a JSON string or an object with a ``"query"`` field, so that an evaluation
set can be run through the real app and each result written as one JSON line. A line
that is not one of those stops the run with its line number, before any work is wasted
on a malformed file's later lines.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from archivist.errors import ArchivistError


def read_queries(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, query) for each non-blank line of ``path`` ("-": standard input)."""
    stream = sys.stdin if str(path) == "-" else Path(path).open(encoding="utf-8")
    with stream:
        for number, line in enumerate(stream, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ArchivistError(f"{path}, line {number}: not JSON ({exc})") from exc
            query = item.get("query") if isinstance(item, dict) else item
            if not isinstance(query, str):
                raise ArchivistError(f'{path}, line {number}: expected a string or {{"query": ...}}')
            yield number, query
