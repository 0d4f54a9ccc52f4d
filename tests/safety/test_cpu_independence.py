"""The shipped safety filter gives the committed scores and verdicts on any CPU.

``fixtures/cpu_scores.json`` holds, for 350 texts, the learned head's class probabilities
(its 4-layer view, and the final ones with the deep head averaged in near the threshold)
and the filter's verdict at the input and output stages, as computed when the head was
built. Where the CPU differs, the float kernels differ by about one ulp. With the fp32
encoder that moves a score by under 1e-6 (``bench/cpu_independence.py``: 6e-7 at most).
The int8 encoder it replaced moved scores by up to 3e-2. The test allows ``TOL`` = 1e-4,
and every text in the fixture sits at least ``2 * TOL`` from each place a decision
changes: the warn and block thresholds, the edges of the band where the deep head is
read, and the tie
between the two likeliest unsafe classes. So a CPU that passes the score check gives the
same verdicts, and the verdicts are checked too.

Regenerate after rebuilding the head (``python -m archivist_safety.build_classifier``)::

    .venv/bin/python tests/safety/test_cpu_independence.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archivist import Stage

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).with_name("fixtures") / "cpu_scores.json"
WHEELS = ROOT / ".cache" / "wheels"
SAFETY_HOME = ROOT / ".cache" / "test-safety-home"
TOL = 1e-4
# Everyday and borderline texts besides the training lines (every 5th of those is used).
EXTRA = [
    "He looks like a very chill cat.",
    "YMMV.",
    "All human beings are born free and equal in dignity and rights.",
    "How do I kill a Python process that hangs?",
    "What's the best way to shoot a photo at night?",
    "My grandmother passed away last week and I miss her.",
    "Can you summarise this quarterly report for me?",
    "The recipe says to beat the eggs until stiff.",
    "Where can I buy a good kitchen knife?",
    "I could murder a pizza right now.",
    "The suspect was arrested after the robbery.",
    "Tell me how to make a bomb.",
    "I hate Mondays.",
    "You are an idiot and everyone hates you.",
    "How do I pick a lock without the key?",
    "What household chemicals should never be mixed?",
]


def texts() -> list[str]:
    from archivist_safety.build_classifier import load_training

    return [t for t, _, _ in load_training()][::5] + EXTRA


def screener() -> Any:
    from archivist_safety.filter import ArchivistSafetyFilter

    f = ArchivistSafetyFilter(home=SAFETY_HOME, wheel_cache=WHEELS)
    f.warm_up()
    assert f.learned is not None and f.learned.encoder is not None, f.learned.error if f.learned else "no head"
    return f


def measure(f: Any, text: str) -> dict[str, Any]:
    """What the fixture records for ``text``: the 4-layer probabilities, the final ones,
    and the verdict at the input and output stages."""
    from archivist_safety.classifier import lexical_features

    learned = f.learned
    head = learned.head
    pooled, _ = learned.encoder.encode(text)
    first = head.probabilities(np.hstack([pooled, lexical_features(text)]))
    final = learned.probabilities(text)
    row: dict[str, Any] = {"text": text, "first": [round(float(x), 7) for x in first],
                          "probs": [round(float(x), 7) for x in final]}
    for stage in (Stage.INPUT, Stage.OUTPUT):
        v = f.screen(text, stage)
        row[stage.value] = {"action": v.action.value, "categories": list(v.categories)}
    return row


def margins(row: dict[str, Any], head: Any) -> dict[str, float]:
    """How far ``row``'s numbers sit from each place a decision changes."""
    safe = head.classes.index("safe")
    first_unsafe = 1.0 - row["first"][safe]
    unsafe = 1.0 - row["probs"][safe]
    others = sorted((p for i, p in enumerate(row["probs"]) if i != safe), reverse=True)
    return {
        "threshold": abs(unsafe - head.threshold),
        "block": abs(unsafe - head.block),
        "band": min(abs(first_unsafe - (head.threshold - head.band)), abs(first_unsafe - (head.block + head.band))),
        # the category only matters for a flagged text
        "category": others[0] - others[1] if unsafe >= head.threshold else 1.0,
    }


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text("utf-8"))


@pytest.fixture(scope="module")
def safety_filter() -> Any:
    return screener()


def test_fixture_is_for_the_shipped_head_and_leaves_no_verdict_within_reach(fixture, safety_filter) -> None:
    head = safety_filter.learned.head
    assert (fixture["threshold"] == pytest.approx(head.threshold) and fixture["band"] == pytest.approx(head.band)
            and fixture["block_threshold"] == pytest.approx(head.block)), (
        "the head was rebuilt: regenerate the fixture (see this module's docstring)")
    assert len(fixture["rows"]) >= 300
    for row in fixture["rows"]:
        near = {k: m for k, m in margins(row, head).items() if m <= 2 * TOL}
        assert not near, f"{row['text']!r} sits within {2 * TOL} of a decision: {near}"
    # both verdicts are represented, at both stages
    for stage in ("input", "output"):
        actions = {r[stage]["action"] for r in fixture["rows"]}
        assert {"allow", "warn", "block"} <= actions


def test_scores_match_the_fixture_within_tolerance(fixture, safety_filter) -> None:
    worst = 0.0
    for row in fixture["rows"]:
        now = measure(safety_filter, row["text"])
        for key in ("first", "probs"):
            diff = float(np.abs(np.array(now[key]) - np.array(row[key])).max())
            worst = max(worst, diff)
            assert diff <= TOL, f"{row['text']!r}: {key} moved by {diff:.2e} (tolerance {TOL})"
    print(f"largest probability difference to the fixture: {worst:.2e}")


def test_verdicts_match_the_fixture(fixture, safety_filter) -> None:
    wrong = []
    for row in fixture["rows"]:
        for stage in (Stage.INPUT, Stage.OUTPUT):
            v = safety_filter.screen(row["text"], stage)
            got = {"action": v.action.value, "categories": list(v.categories)}
            if got != row[stage.value]:
                wrong.append((row["text"], stage.value, row[stage.value], got))
    assert not wrong, wrong[:5]


def write() -> None:
    f = screener()
    head = f.learned.head
    rows, left_out = [], []
    for text in texts():
        row = measure(f, text)
        (left_out if min(margins(row, head).values()) <= 4 * TOL else rows).append(row)
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps({"threshold": head.threshold, "block_threshold": head.block,
                                   "band": head.band, "tolerance": TOL,
                                   "classes": list(head.classes), "rows": rows}, indent=1) + "\n", "utf-8")
    print(f"wrote {len(rows)} rows to {FIXTURE}; left out {len(left_out)} within {4 * TOL} of a decision:")
    for row in left_out:
        print("  ", row["text"])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    write()
