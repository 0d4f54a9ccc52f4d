"""Packing sources and history into the context budget, and reading citations back."""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist import ChatMessage, Locator, Passage
from archivist.prompt import cited_numbers, make_citations, pack_prompt


@pytest.fixture(scope="module")
def model(default_model_dir: Path):
    from archivist.engine.runtime import load_model

    loaded = load_model(default_model_dir)
    yield loaded
    loaded.close()


def passages(n: int, words: int = 80) -> list[Passage]:
    return [
        Passage(text=" ".join([f"fact{i}"] * words), path=f"/docs/{i}.txt", locator=Locator(page=i, start=0, end=10))
        for i in range(1, n + 1)
    ]


def pack(model, budget: int, *, history=(), sources=()):
    return pack_prompt(
        "What is fact1?",
        history=list(history),
        passages=list(sources),
        system_prompt="You are a test.",
        template=model.apply_chat_template,
        count_tokens=model.count_tokens,
        budget=budget,
    )


def test_everything_fits_when_the_budget_allows(model) -> None:
    packed = pack(model, 4000, sources=passages(3))
    assert len(packed.sources) == 3
    assert "[3]" in packed.prompt and packed.tokens <= 4000
    assert packed.tokens == model.count_tokens(packed.prompt)


def test_least_relevant_sources_are_dropped_first_to_fit(model) -> None:
    full = pack(model, 10_000, sources=passages(5))
    packed = pack(model, full.tokens - 50, sources=passages(5))
    assert [p.path for p in packed.sources] == [f"/docs/{i}.txt" for i in range(1, len(packed.sources) + 1)]
    assert len(packed.sources) < 5 and packed.tokens <= full.tokens - 50


def test_oldest_turns_go_before_the_last_source(model) -> None:
    history = [ChatMessage("user", "old question " * 30), ChatMessage("assistant", "old answer " * 30),
               ChatMessage("user", "recent"), ChatMessage("assistant", "reply")]
    roomy = pack(model, 10_000, history=history, sources=passages(1))
    packed = pack(model, roomy.tokens - 40, history=history, sources=passages(1))
    assert len(packed.sources) == 1
    assert packed.history_turns == 2
    assert "old question" not in packed.prompt and "recent" in packed.prompt


def test_cited_numbers_reads_single_and_grouped_citations() -> None:
    assert cited_numbers("A [2]. B [1, 3]; C [2] and [9].", available=3) == [2, 1, 3]
    assert cited_numbers("no citations here", available=3) == []


def test_citations_are_the_sources_the_answer_cites() -> None:
    found = passages(4)
    cited = make_citations("It is so [3]. And so [1, 3].", found)
    assert [(c.n, c.path, c.cited) for c in cited] == [(3, "/docs/3.txt", True), (1, "/docs/1.txt", True)]


def test_an_answer_citing_nothing_lists_the_top_sources_as_consulted_not_cited() -> None:
    found = passages(4)
    for answer in ("It is so.", "It is so [7].", "It is so [0]."):
        fallback = make_citations(answer, found)
        assert [(c.n, c.cited) for c in fallback] == [(1, False), (2, False)], answer
        assert fallback[0].path == "/docs/1.txt" and fallback[0].page == 1
    assert [c.n for c in make_citations("It is so.", found[:1])] == [1]
    assert make_citations("It is so [1].", []) == []
