"""Plugins the GUI tests install: fixed passages, and failures to inject."""

from __future__ import annotations

from doubles import RetrieverPlugin, StaticRetriever  # noqa: F401  (re-exported for the GUI tests)

from archivist import Locator, Passage

FESTIVAL = Passage(
    text="The Zorblat festival takes place every June in the town of Quimby.",
    path="/docs/festivals.pdf",
    locator=Locator(page=3, start=0, end=66),
    score=1.0,
)
