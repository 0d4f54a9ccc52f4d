"""Build ``bench/reports_questions.json``: questions over ``../shared/data/reports``.

    .venv/bin/python bench/reports_questions.py

The 40 PDFs are two families of near-identical documents: 20 NTSB aviation accident
reports (one form, filled in) and 20 NIH trial protocols (NCT06145295...). A question
names its document only by what identifies it (the place, the date, the aircraft, the
registration; the trial's NCT number, which is in the file name alone, or its condition)
and asks for something every document of the family has (the pilot's flight time, the
weather, the investigator; the inclusion and exclusion criteria, the sample size, the
primary outcome). So the passage that answers holds the family's common words, and what
tells the right document from the 19 others is in its header, not in the passage.

Made mechanically, not by hand: the NTSB fields are read from the first page's header
block (``Location: ... Accident Number: ...``), the NIH ones from ``download.csv``
(NCT Number, Conditions). A question is kept only when a page of its document matches
its gold pattern. Gold: a retrieved passage from the document (a file of the trial,
for NIH) whose text matches ``pattern`` (a case-insensitive regular expression).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT.parent / "shared" / "data" / "reports"
OUT = ROOT / "bench" / "reports_questions.json"

NTSB = [
    ("How many hours of flight time did the pilot of the {aircraft} that crashed at {location} have?",
     r"Flight Time: \d"),
    ("What were the wind and visibility at the site of the {location} accident on {date}?",
     r"Wind Speed|Visibility"),
    ("Who was the NTSB investigator in charge for the accident of {registration}?",
     r"Investigator In Charge"),
    ("What was the probable cause of the {aircraft} accident in {location}?",
     r"probable cause\(s\) of this (accident|incident)"),
]
NIH = [
    ("What are the inclusion criteria of trial {nct}?", r"inclusion criteria|eligibility criteria"),
    ("What are the exclusion criteria in study {nct}?", r"exclusion criteria"),
    ("How was the sample size of the {condition} study {nct} calculated?", r"sample size"),
    ("What is the primary outcome measure of trial {nct}?", r"primary (outcome|end ?point)"),
]
FIELDS = re.compile(r"Location: (?P<location>.+?) Accident Number: (?P<number>\S+)\s*\n"
                    r"Date & Time: (?P<date>[\d/]+).*?Registration: ?(?P<registration>\S*)\s*\n"
                    r"Aircraft: (?P<aircraft>.+?) Aircraft Damage", re.S)


def pages(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def matches(texts: list[str], pattern: str) -> bool:
    return any(re.search(pattern, t, re.I) for t in texts)


def main() -> int:
    questions = []
    for pdf in sorted((REPORTS / "ntsb-aviation-incident-accident-reports").glob("*.pdf")):
        texts = pages(pdf)
        m = FIELDS.search(texts[0])
        if m is None:
            continue
        fields = {k: " ".join(v.split()) for k, v in m.groupdict().items()}
        for template, pattern in NTSB:
            if "{registration}" in template and not fields["registration"]:
                continue
            if matches(texts, pattern):
                questions.append({"q": template.format(**fields), "files": [pdf.name], "pattern": pattern,
                                  "family": "ntsb"})
    nih = REPORTS / "nih-clinical-trial-protocols"
    with open(nih / "download.csv", newline="", encoding="utf-8") as f:
        rows = {r["NCT Number"]: r for r in csv.DictReader(f)}
    for nct, row in sorted(rows.items()):
        files = sorted(p.name for p in nih.glob(f"{nct}_*.pdf"))
        texts = [t for name in files for t in pages(nih / name)]
        condition = row["Conditions"].split("|")[0].strip()
        for template, pattern in NIH:
            if matches(texts, pattern):
                questions.append({"q": template.format(nct=nct, condition=condition), "files": files,
                                  "pattern": pattern, "family": "nih"})
    OUT.write_text(json.dumps({"made_by": "bench/reports_questions.py (see its docstring)",
                               "corpus": "../shared/data/reports", "questions": questions}, indent=1) + "\n")
    by = {f: sum(q["family"] == f for q in questions) for f in ("ntsb", "nih")}
    print(f"wrote {OUT}: {len(questions)} questions ({by})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
