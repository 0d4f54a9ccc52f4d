"""A whole-file question answered by the real built-in model: structure only.

The model's words differ between CPUs (tests/core/test_real_model.py says why), so these
check what must hold anywhere: the file is read in parts when it does not fit, each part
is announced, the answer streams, and every citation names the real file and one of its
real pages.
"""

from __future__ import annotations

from pathlib import Path

from pdfs import report_pages, text_pdf

from archivist.types import GenerationOptions

FINISHED = {"stop", "length", "repetition"}  # "repetition": archivist.repetition cut a loop


def test_the_real_model_summarises_a_multi_page_pdf_in_parts_citing_real_pages(app, tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "report.pdf", report_pages(16))
    app.settings().set("gui.file_context_budget", 600)  # small, so 16 pages take several parts
    events = list(app.assistant().stream("Summarise this report.", files=[pdf],
                                         options=GenerationOptions(max_new_tokens=48)))
    answer = events[-1].answer
    reading = [e.text for e in events if e.kind == "progress" and e.text.startswith("Reading part")]
    assert answer.parts >= 2 and len(reading) == answer.parts
    assert answer.files == [str(pdf)]
    assert answer.stats.finish_reason in FINISHED
    assert "".join(e.text for e in events if e.kind == "text").strip() == answer.text
    assert answer.text
    for citation in answer.citations:
        assert citation.path == str(pdf) and citation.page in range(1, 17)
        assert 1 <= citation.n <= answer.parts
        assert f"P{citation.page}Q" in citation.snippet  # the snippet is that page's text


def test_the_real_model_reads_a_short_pdf_whole(app, tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "short.pdf", report_pages(3))
    events = list(app.assistant().stream("What does page 2 cover?", files=[pdf],
                                         options=GenerationOptions(max_new_tokens=32)))
    answer = events[-1].answer
    assert answer.parts == 0 and not [e for e in events if e.kind == "progress"]
    assert answer.stats.prompt_tokens > 100  # all three pages went in
    for citation in answer.citations:
        assert citation.path == str(pdf) and citation.page in (1, 2, 3)
