"""Cutting answers into prose and code, and linking citations (pure Python, no display)."""

from __future__ import annotations

from archivist.gui.markdown import Segment, citation_number, link_citations, split_segments


def test_prose_and_a_closed_code_block() -> None:
    text = "Here is code:\n\n```python\nprint('hi')\n```\n\nDone."
    assert split_segments(text) == [
        Segment("text", "Here is code:"),
        Segment("code", "print('hi')", "python", closed=True),
        Segment("text", "Done."),
    ]


def test_a_fence_still_streaming_is_an_open_code_block() -> None:
    assert split_segments("Look:\n```bash\nls -l") == [
        Segment("text", "Look:"),
        Segment("code", "ls -l", "bash", closed=False),
    ]


def test_a_longer_fence_closes_only_with_its_own_kind() -> None:
    text = "~~~~\n```\nnot the end\n~~~~"
    assert split_segments(text) == [Segment("code", "```\nnot the end", "", closed=True)]


def test_citations_become_links_only_for_known_sources() -> None:
    linked = link_citations("June [1], Quimby [1, 2], invented [7].", available=2)
    assert "[1](cite:1)" in linked and "[2](cite:2)" in linked
    assert "invented [7]" in linked
    assert citation_number("cite:2") == 2
    assert citation_number("https://example.org") is None


def test_citations_in_code_spans_and_markdown_links_stay_as_they_are() -> None:
    text = "Use `a[1]` and [docs](http://x) [1]"
    linked = link_citations(text, available=1)
    assert "`a[1]`" in linked
    assert "[docs](http://x)" in linked
    assert linked.endswith("\\[[1](cite:1)\\]")
