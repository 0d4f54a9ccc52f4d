"""The search encoder ranks the committed passages the same way on any CPU.

``fixtures/cpu_rankings.json`` holds 24 questions about Archivist and 80 paragraphs of its
own documentation (copied into the fixture, so later edits to docs/ do not move it). It
also holds each question's cosine to each paragraph, as the shipped encoder computed
them. On another CPU the float kernels differ by about one ulp. With the fp32 encoder
that moves a cosine by under 1e-6 (``bench/cpu_independence.py``: 4e-7 at most). The
mixed encoder that indexed until recipe 5 moved cosines by up to 4e-3 and changed the
top-5 order for 2% of XQuAD's questions. The test allows ``TOL`` = 1e-4 per cosine. Each
question's top 5 is recorded only as far as consecutive scores differ by more than
``2 * TOL``, so a CPU that passes the score check returns the same passages in the same
order.

Regenerate after changing the encoder's recipe::

    .venv/bin/python tests/retrieval/test_cpu_independence.py --write
"""

from __future__ import annotations

import json
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).with_name("fixtures") / "cpu_rankings.json"
TOL = 1e-4
QUESTIONS = [
    "How do I index a folder?",
    "What does the safety filter do?",
    "Which model should I run on my laptop?",
    "How do I write a plugin?",
    "Where does Archivist keep my conversations?",
    "Can I use a GGUF file from LM Studio?",
    "How do I stop an answer?",
    "What happens to a file that cannot be read?",
    "Does Archivist send anything over the network?",
    "How are citations numbered?",
    "Which file formats can be indexed?",
    "How do I use an NVIDIA GPU?",
    "What is safe mode?",
    "How is the hybrid search fused?",
    "How big is the installer?",
    "How do I remove a model?",
    "What does the Library page show?",
    "How fast is indexing a long PDF?",
    "What is a hook wrapper?",
    "How do I disable a plugin?",
    "What does a redacted verdict mean?",
    "How do I run the tests?",
    "Where are the benchmarks?",
    "Can I watch a folder for changes?",
]


def paragraphs() -> list[str]:
    found = [p.strip() for f in sorted((ROOT / "docs").glob("*.md")) for p in f.read_text("utf-8").split("\n\n")
             if 200 <= len(p.strip()) <= 1200]
    return found[:: max(1, len(found) // 80)][:80]


def cosines(embedder, questions: list[str], passages: list[str]) -> np.ndarray:
    """Questions one at a time and passages in a batch, as search and indexing run them."""
    q = np.stack([embedder.embed([text])[0] for text in questions])
    return q @ embedder.embed(passages).T


def settled_top(scores: np.ndarray, k: int = 5) -> list[int]:
    """The top ``k`` indexes, cut where two consecutive scores are within ``2 * TOL``
    (there another CPU could swap them)."""
    order = [int(i) for i in np.argsort(-scores, kind="stable")[: k + 1]]
    kept = []
    for a, b in pairwise(order):
        if scores[a] - scores[b] <= 2 * TOL:
            break
        kept.append(a)
    return kept


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text("utf-8"))


def test_fixture_ranks_enough_passages_for_a_real_check(fixture) -> None:
    assert len(fixture["questions"]) == len(QUESTIONS) and len(fixture["passages"]) >= 60
    assert sum(len(t) for t in fixture["top"]) >= 4 * len(QUESTIONS)  # few near-ties


def test_cosines_match_the_fixture_within_tolerance(fixture, embedder) -> None:
    now = cosines(embedder, fixture["questions"], fixture["passages"])
    diff = float(np.abs(now - np.array(fixture["cosines"])).max())
    print(f"largest cosine difference to the fixture: {diff:.2e}")
    assert diff <= TOL


def test_each_question_finds_the_same_passages_in_the_same_order(fixture, embedder) -> None:
    now = cosines(embedder, fixture["questions"], fixture["passages"])
    for question, scores, top in zip(fixture["questions"], now, fixture["top"]):
        got = [int(i) for i in np.argsort(-scores, kind="stable")[: len(top)]]
        assert got == top, question


def write() -> None:
    from archivist_models.embedder import RECIPE_VERSION, build_embedder
    from archivist_models.embeddings import Embedder

    path = build_embedder(ROOT / ".cache" / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}",
                          ROOT / ".cache" / "wheels")
    passages = paragraphs()
    scores = cosines(Embedder(path), QUESTIONS, passages)
    top = [settled_top(row) for row in scores]
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps({"recipe_version": RECIPE_VERSION, "tolerance": TOL, "questions": QUESTIONS,
                                   "passages": passages, "top": top,
                                   "cosines": [[round(float(x), 6) for x in row] for row in scores]},
                                  indent=1) + "\n", "utf-8")
    print(f"wrote {FIXTURE}: {len(QUESTIONS)} questions x {len(passages)} passages, "
          f"{sum(len(t) for t in top)} ranked places settled")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    write()
