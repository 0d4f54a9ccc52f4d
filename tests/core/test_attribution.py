"""Matching an answer's sentences to the sources whose words they repeat, when it cites none."""

from __future__ import annotations

from archivist.attribution import content_words, matched_sources
from archivist.prompt import make_citations
from archivist.types import Locator, Passage

PAGES = [
    "The boiler is serviced every October by Acme Heating of Leeds.",
    "The roof was replaced in 2019 after the storm damaged 40 tiles.",
    "Council tax is paid monthly by direct debit from the joint account.",
]


def test_a_copied_sentence_is_matched_to_its_source_and_an_invented_one_to_none() -> None:
    answer = ("The roof was replaced in 2019 after a storm damaged tiles. "
              "Solar panels were fitted on the garage last spring.")
    assert matched_sources(answer, PAGES) == [2]


def test_sources_come_in_the_order_the_answer_repeats_them_each_once() -> None:
    answer = ("Council tax is paid monthly by direct debit. Acme Heating services the boiler every October. "
              "Council tax goes by direct debit from the joint account.")
    assert matched_sources(answer, PAGES) == [3, 1]


def test_short_sentences_and_boilerplate_shared_by_two_sources_match_nothing() -> None:
    assert matched_sources("Yes, every October.", PAGES) == []  # two content words: too few to say
    twins = ["The committee reviewed the figures and agreed on the next steps. Page one.",
             "The committee reviewed the figures and agreed on the next steps. Page two."]
    assert matched_sources("The committee reviewed the figures and agreed on next steps.", twins) == []


def test_numbers_are_content_words_and_stopwords_are_not() -> None:
    assert content_words("It was 40 of the tiles, and they were from 2019.") == {"40", "tiles", "2019"}


def test_an_answer_without_numbers_lists_the_sources_it_repeats_as_matched_not_cited() -> None:
    passages = [Passage(text=t, path=f"/home/{n}.txt", locator=Locator(page=n), score=0.5)
                for n, t in enumerate(PAGES, 1)]
    [citation] = make_citations("The roof was replaced in 2019, after the storm damaged 40 tiles.", passages)
    assert (citation.n, citation.page, citation.cited, citation.matched) == (2, 2, False, True)
    # A citing answer is taken at its word; one that repeats nothing falls back to consulted.
    assert [(c.n, c.cited, c.matched) for c in make_citations("It was replaced [2].", passages)] == [(2, True, False)]
    assert [(c.n, c.cited, c.matched) for c in make_citations("Nobody knows.", passages)] == [
        (1, False, False), (2, False, False)]
