"""Clean multi-sentence answers screened by heads that never saw their source.

``bench/safety.py`` screens clean answers of 3+ sentences written by others (CoCoNot's
compliant responses, self-instruct's instructions and outputs: :func:`clean_answers`
there). Each of those answers is itself a training row of the shipped head (checked by
:func:`training_overlap`), so the shipped head's figure on them is a development figure.
Here each source's answers are screened again by the real filter
(``Screener.screen_stream`` at the output stage, as ``bench/safety.py``'s ``run`` does)
with the learned head swapped for one fitted as the build's by-source loop fits it
(:func:`archivist_safety.build_classifier.build`): the all-data heads (both views) fitted
on every row but that source's, averaged with the shipped lines head (our own lines
only, which never saw either source), at the shipped warn and block thresholds. The
swap is in memory (``LearnedLayer.head``, a frozen :class:`~archivist_safety.classifier.Head`
replaced with ``dataclasses.replace``); the shipped ``safety_head.npz`` is not touched.

Costs: the features of the 21,328 training rows come from the build's cache
(``.cache/safety-features/``; the lexical part is recomputed, about a minute), two fits
per held-out source (about 15 s each on 2 cores), then the screening (about a minute a
source). Run through ``bench/safety.py --heldout-answers``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from archivist.screening import Screener
from archivist.types import Action

ROOT = Path(__file__).resolve().parent.parent
# (bench source prefix in the CSV, the corpus source held out, the CSV file)
ANSWER_SOURCES = (("coconot-contrast-response", "coconot", "coconot.csv"),
                  ("self-instruct", "self-instruct", "self_instruct.csv"))


def training_overlap(answers: list[str]) -> dict[str, int]:
    """How many of ``answers`` are training rows of the shipped head, by (source,
    subsource), compared as the corpus deduplicates (lower case, non-alphanumerics
    collapsed); ``"not trained on"`` counts the rest."""
    from archivist_safety import corpus

    rows = {corpus._key(r.text): r for r in corpus.load()}
    out: dict[str, int] = {}
    for a in answers:
        r = rows.get(corpus._key(a))
        key = f"{r.source} / {r.subsource}" if r is not None else "not trained on"
        out[key] = out.get(key, 0) + 1
    return out


def heldout_heads(held: list[str], home: Path) -> dict[str, Any]:
    """For each corpus source in ``held``: the shipped head with its all-data weights
    (both views) refitted on every training row but that source's, as the build's
    by-source loop fits them. Also checks the refit against the build's own out-of-source
    scores where they are cached (the largest difference, for the report)."""
    from archivist_safety import corpus
    from archivist_safety.build_classifier import FEATURES, features, fit, sample_weights
    from archivist_safety.classifier import CLASSES, Head

    shipped = Head.load()
    rows = corpus.load()
    x, xd, *_ = features(rows, home, ROOT / ".cache" / "wheels", FEATURES)
    y = np.array([CLASSES.index(r.label) for r in rows])
    sources = np.array([r.source for r in rows])
    weights = sample_weights(y, list(sources))
    stored = FEATURES / "heldout-scores.npz"
    out: dict[str, Any] = {}
    for name in held:
        t0 = time.perf_counter()
        keep = sources != name
        w, b = fit(x[keep], y[keep], weights[keep])
        wd, bd = fit(xd[keep], y[keep], weights[keep])
        head = dataclasses.replace(shipped, weights=w, bias=b, deep_weights=wd, deep_bias=bd)
        check = None
        if stored.exists():
            with np.load(stored) as data:
                if len(data["y"]) == len(y):
                    mine = np.array([head.unsafe(p) for p in head.probabilities(x[~keep])])
                    check = float(np.abs(mine - data["first"][~keep]).max())
        out[name] = {"head": head, "fit_s": round(time.perf_counter() - t0, 1), "max_diff_vs_build": check}
    return out


def screen_answers(s: Screener, answers: list[str]) -> dict[str, Any]:
    """Flagged and blocked shares of ``answers`` streamed through the output stage, the
    sentences blocked (for reading), and the latency per sentence."""
    from safety import chunks  # bench/safety.py

    flagged = blocked = 0
    lat: list[float] = []
    blocked_sentences: list[dict[str, Any]] = []
    n_sentences = 0
    for a in answers:
        s.delays_ms = []
        events = list(s.screen_stream(chunks(a)))
        lat += s.delays_ms
        n_sentences += len(events)
        flagged += any(e.verdict.action is not Action.ALLOW for e in events)
        if any(e.verdict.action is Action.BLOCK for e in events):
            blocked += 1
            before = ""
            for e in events:
                if e.verdict.action is Action.BLOCK:
                    blocked_sentences.append({"sentence": e.source.strip(), "before": before,
                                              "categories": list(e.verdict.categories),
                                              "score": e.verdict.score, "answer": a})
                before = e.source.strip() or before
    n = max(1, len(answers))
    return {"n": len(answers), "sentences": n_sentences, "flagged": round(flagged / n, 4),
            "blocked": round(blocked / n, 4), "n_flagged": flagged, "n_blocked": blocked,
            "latency_ms_p50": round(statistics.median(lat), 3) if lat else None,
            "blocked_sentences": blocked_sentences}


def run_heldout_answers(s: Screener, train: Path, home: Path, show: bool = True) -> dict[str, Any]:
    """Clean 3+-sentence answers per source, screened by the shipped head and by a head
    that never saw the source (same run, same filter otherwise)."""
    from safety import clean_answers_by_source  # bench/safety.py

    by_source = clean_answers_by_source(train)
    learned: Any = next(lay for f in s.filters if (lay := getattr(f.obj, "learned", None)) is not None)
    shipped = learned.head
    everything = [a for answers in by_source.values() for a in answers]
    result: dict[str, Any] = {"training_overlap": training_overlap(everything), "sources": {}}
    print(f"clean answers of 3+ sentences that are training rows of the shipped head: {result['training_overlap']}")
    t0 = time.perf_counter()
    heads = heldout_heads([corpus_source for _, corpus_source, _ in ANSWER_SOURCES], home)
    for prefix, corpus_source, _ in ANSWER_SOURCES:
        answers = by_source.get(prefix, [])
        if not answers:
            continue
        h = heads[corpus_source]
        learned.head = shipped
        dev = screen_answers(s, answers)
        learned.head = h["head"]
        try:
            held = screen_answers(s, answers)
        finally:
            learned.head = shipped
        result["sources"][corpus_source] = {"shipped_head": dev, "heldout_head": held, "fit_s": h["fit_s"],
                                            "max_diff_vs_build": h["max_diff_vs_build"]}
        print(f"  {corpus_source:14} {len(answers):5d} answers: shipped head flagged {dev['flagged']:.1%} "
              f"blocked {dev['blocked']:.1%}; head without {corpus_source}: flagged {held['flagged']:.1%} "
              f"blocked {held['blocked']:.1%} (refit vs build's scores: max diff {h['max_diff_vs_build']})")
        if show:
            for b in held["blocked_sentences"]:
                print(f"    BLOCKED {b['score']:.3f} {b['categories']} {b['sentence'][:200]!r}\n"
                      f"      after {b['before'][:160]!r}")
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(f"  held-out answers took {result['elapsed_s']} s")
    return result
