"""The labelled texts the learned head is trained on: the project's own lines
(``training/``) and the third-party sets in ``../shared/data/safety-train/`` (see that
folder's README for each file's origin and licence).

Each row is a :class:`Row`: the text, its class (one of
:data:`archivist_safety.classifier.CLASSES`), the data set it came from (``source``,
what the build holds out one at a time), and its finer origin (``subsource``, for
reporting). Choices made here, all deterministic:

- the two ``_WEAK`` files are left out (their README: a minority of their "unsafe" rows
  are benign, and false positives are the problem we are fixing);
- a source's category is mapped onto our classes by :data:`CLASS_OF` (crime, cyber,
  drugs, fraud, weapons, dangerous advice, misinformation -> ``dangerous``, ...);
- large sources are capped per (subsource, label) at :data:`CAPS` rows, picked by a hash
  of the text, so Davidson's 20,000 tweets or NQ's 7,000 questions do not dominate;
- NQ questions (lower case, no question mark) get a capital and a "?" on half their
  rows, so "no ?" does not become a sign of safety;
- a text seen twice (after lower-casing and collapsing non-alphanumerics) is kept once,
  our own lines first; one labelled differently by two sources is dropped.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TRAINING = Path(__file__).with_name("training")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "safety-train"
OWN = "archivist-lines"

# Shared files used, in priority order (first copy of a duplicate wins).
FILES = (
    "advbench_harmful_behaviors.csv",
    "catqa_en.csv",
    "dangerousqa.csv",
    "jailbreak_llms_forbidden_questions.csv",
    "coconot.csv",
    "davidson_tweets.csv",
    "hatecheck.csv",
    "toxigen_seed_sentences.csv",
    "convabuse.csv",
    "safetext.csv",
    "nq_open_questions.csv",
    "self_instruct.csv",
)

CLASS_OF = {
    "hate": "hate",
    "extremism": "hate",
    "harassment": "harassment",
    "offensive": "harassment",
    "violence": "violence",
    "weapons": "dangerous",  # as our own lines file them (unsafe-dangerous.txt)
    "self-harm": "self_harm",
    "sexual": "sexual",
    "privacy": "privacy",
    "crime": "dangerous",
    "cyber": "dangerous",
    "drugs": "dangerous",
    "fraud": "dangerous",
    "misinformation": "dangerous",
    "child-safety": "dangerous",
    "dangerous-advice": "dangerous",
    "dangerous-topic": "dangerous",
    "": "dangerous",  # harmful requests the upstream left uncategorised
}

# At most this many rows per (subsource, label); the rest are dropped by text hash.
CAPS = {
    ("davidson:offensive", "unsafe"): 1500,
    ("davidson:hate", "unsafe"): 1000,
    ("davidson:neither", "safe"): 1500,
    ("nq-open", "safe"): 2500,
}


@dataclass(frozen=True)
class Row:
    text: str
    label: str  # a class in classifier.CLASSES
    source: str  # the data set, held out as a whole during validation
    subsource: str  # finer origin, for reports


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def own_lines(folder: Path = TRAINING) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(folder.glob("*.txt")):
        kind, _, rest = path.stem.partition("-")
        label = "safe" if kind == "safe" else rest
        for line in path.read_text("utf-8").splitlines():
            text = line.strip()
            if text and not text.startswith("#"):
                rows.append(Row(text, label, OWN, f"{OWN}:{path.stem}"))
    return rows


def _source_of(file: str, source: str) -> tuple[str, str]:
    """(the held-out group, the reported subsource) for a CSV row's ``source``."""
    group = file.removesuffix(".csv").removesuffix("_en").removesuffix("_harmful_behaviors")
    group = group.removesuffix("_forbidden_questions").removesuffix("_seed_sentences")
    group = group.removesuffix("_tweets").removesuffix("_questions").replace("_", "-")
    sub = source
    if file.startswith("davidson"):
        sub = source if ":" in source else "davidson"
    elif file.startswith("coconot"):
        sub = source.split(":")[0]
    elif file.startswith("hatecheck"):
        sub = "hatecheck"
    return group, sub


def shared_rows(folder: Path = SHARED) -> list[Row]:
    rows: list[Row] = []
    for file in FILES:
        with open(folder / file, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                text = r["text"].strip()
                if not text:
                    continue
                group, sub = _source_of(file, r["source"])
                if r["label"] == "safe":
                    label = "safe"
                else:
                    cat = r["category"]
                    label = CLASS_OF.get(cat, "dangerous")
                    if file.startswith("davidson"):
                        sub = f"davidson:{cat}"
                if file.startswith("davidson") and r["label"] == "safe":
                    sub = "davidson:neither"
                if group == "nq-open" and _hash(text) % 2:
                    text = text[:1].upper() + text[1:] + "?"
                rows.append(Row(text, label, group, sub))
    # caps, by text hash within each (subsource, label)
    kept: list[Row] = []
    seen: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        side = "safe" if row.label == "safe" else "unsafe"
        seen.setdefault((row.subsource, side), []).append(row)
    for key, group_rows in seen.items():
        cap = CAPS.get(key)
        if cap is not None and len(group_rows) > cap:
            group_rows = sorted(group_rows, key=lambda r: _hash(r.text))[:cap]
        kept.extend(group_rows)
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(kept, key=lambda r: order[id(r)])


def dedupe(rows: Iterable[Row]) -> list[Row]:
    """First copy of each normalised text; texts two rows label safe and unsafe are dropped."""
    rows = list(rows)
    sides: dict[str, set[bool]] = {}
    for r in rows:
        sides.setdefault(_key(r.text), set()).add(r.label == "safe")
    out, seen = [], set()
    for r in rows:
        k = _key(r.text)
        if not k or k in seen or len(sides[k]) > 1:
            continue
        seen.add(k)
        out.append(r)
    return out


def load(shared: Path | None = SHARED) -> list[Row]:
    """All training rows: our own lines, then the shared sets (when ``shared`` exists)."""
    rows = own_lines()
    if shared is not None and shared.is_dir():
        rows += shared_rows(shared)
    return dedupe(rows)
