"""The learned head's curves on sources held out from training, from the build's
out-of-source scores.

The build (``python -m archivist_safety.build_classifier``) scores every training row by
heads that never saw that row's data set and keeps those scores in
``.cache/safety-features/heldout-scores.npz``. This module reads them and says, for each
source with unsafe rows, how much is caught at the warn threshold that flags 1, 2, 5, 10
or 20% of clean texts, with the threshold set the way the build sets it
(:func:`archivist_safety.build_classifier.macro_fp_threshold`: the clean share flagged
averaged over the sources with clean text, the contrast suites left out), and at the
shipped warn and block thresholds; and each source's ROC AUC. The score is the head's
cascade score (:func:`~archivist_safety.build_classifier.cascade_scores`), which decides
both stages: the input and output stages differ by the rules and the answer window only.

Why a curve and not one point: the issue's goal (90% caught at 5% flagged) is not
reached, and a user who moves ``threshold`` moves along exactly this curve, so it says
what each setting costs on text the head has not seen.

    .venv/bin/python bench/safety_curves.py [--scores .cache/safety-features/heldout-scores.npz]

(``bench/safety.py`` prints the same table and writes it to its JSON.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCORES = ROOT / ".cache" / "safety-features" / "heldout-scores.npz"
TARGETS = (0.01, 0.02, 0.05, 0.10, 0.20)
# Harmful requests (what the input stage sees) and harmful texts (what an answer or a
# passage holds): the issue asks for both stages.
REQUESTS = ("advbench", "catqa", "dangerousqa", "jailbreak-llms", "coconot")
TEXTS = ("davidson", "convabuse", "toxigen", "hatecheck", "safetext")
MAKE = ("the held-out scores are made by the build: `.venv/bin/python -m archivist_safety.build_classifier` "
        "(about 5 minutes to embed the texts the first time, then about 7 of fitting on 2 cores; it also "
        "rewrites safety_head.npz: pass `--out /tmp/head.npz` to leave the shipped weights alone)")


def curves(scores_path: Path = SCORES) -> dict[str, Any]:
    """The curve table as a dict (see the module docstring); ``FileNotFoundError`` with
    how to make the scores when the build has not been run here."""
    from archivist_safety.build_classifier import BAND, CONTRAST_SUITES, cascade_scores, macro_fp_threshold, roc_auc
    from archivist_safety.classifier import WEIGHTS

    if not Path(scores_path).exists():
        raise FileNotFoundError(f"no {scores_path}: {MAKE}")
    with np.load(scores_path) as data:
        first, deep, y = data["first"], data["deep"], data["y"]
        sources = data["sources"].astype(str)
    with np.load(WEIGHTS) as data:
        meta = json.loads(str(data["meta"]))
    warn, block = float(meta["threshold"]), float(meta["block_threshold"])
    band = float(meta.get("band", BAND))
    if len(y) != meta.get("n_train"):
        print(f"warning: {scores_path} holds {len(y)} rows, the shipped head was built on {meta.get('n_train')}; "
              "rerun the build to match", file=sys.stderr)
    unsafe = y != 0
    both = (first + deep) / 2
    everyday = ~np.isin(sources, CONTRAST_SUITES)
    clean_sources = sorted(set(sources[~unsafe & everyday]))
    reported = sorted(set(sources[~unsafe]))  # the contrast suites too, outside the average
    groups: dict[str, np.ndarray] = {s: sources == s for s in sorted(set(sources[unsafe]))}
    groups["harmful requests"] = np.isin(sources, REQUESTS)
    groups["harmful texts"] = np.isin(sources, TEXTS)
    groups["all sources"] = np.ones(len(y), bool)

    def point(w: float, b: float) -> dict[str, Any]:
        s = cascade_scores(first, deep, w, b, band)
        return {
            "caught": {g: round(float((s[m & unsafe] >= w).mean()), 4) for g, m in groups.items()},
            "clean_flagged": {c: round(float((s[(sources == c) & ~unsafe] >= w).mean()), 4) for c in reported},
            "clean_flagged_macro": round(float(np.mean([(s[(sources == c) & ~unsafe] >= w).mean()
                                                        for c in clean_sources])), 4),
            "clean_flagged_pooled": round(float((s[~unsafe] >= w).mean()), 4),
        }

    points = []
    for target in TARGETS:
        # Chosen as the build chooses the warn threshold (on the two heads' average), then
        # scored as the filter scores with that threshold set (the deep head read within
        # the band around it and the shipped block threshold).
        t = macro_fp_threshold(both[everyday], y[everyday], sources[everyday], target)
        points.append({"target_clean_flagged": target, "threshold": t, **point(t, max(t, block))})
    shipped = cascade_scores(first, deep, warn, block, band)
    return {
        "score": "the learned head's cascade score (decides both stages; they differ by rules and the answer window)",
        "scores_file": str(scores_path),
        "warn": warn,
        "block": block,
        "contrast_suites_left_out": list(CONTRAST_SUITES),
        "n_unsafe": {g: int((m & unsafe).sum()) for g, m in groups.items()},
        "auc": {g: roc_auc(shipped[m], unsafe[m]) for g, m in groups.items()},
        "points": points,
        "shipped_warn": {"threshold": warn, **point(warn, block)},
        "shipped_block": {"threshold": block, **point(block, block)},
    }


def print_curves(c: dict[str, Any]) -> None:
    """The table: one row per source with unsafe rows, one column per clean share."""
    cols = [(f"{p['target_clean_flagged']:.0%} ({p['threshold']:.3f})", p) for p in c["points"]]
    cols += [(f"warn {c['warn']:.3f}", c["shipped_warn"]), (f"block {c['block']:.3f}", c["shipped_block"])]
    print("Held out by source: caught at the warn threshold that flags the given share of clean texts\n"
          "(averaged over the sources with clean text, HateCheck left out) -- the learned head's cascade\n"
          "score, which decides both stages (they differ by the rules and the answer window only):")
    head = f"  {'source':18} {'unsafe':>6} {'AUC':>6} " + " ".join(f"{name:>14}" for name, _ in cols)
    print(head)
    for g, n in c["n_unsafe"].items():
        auc = f"{c['auc'][g]:6.3f}" if c["auc"][g] is not None else f"{'-':>6}"
        print(f"  {g:18} {n:6d} {auc} " + " ".join(f"{p['caught'][g]:14.1%}" for _, p in cols))
    print(f"  {'clean flagged':18} {'':6} {'':6} " + " ".join(f"{p['clean_flagged_macro']:14.1%}" for _, p in cols)
          + "   (macro, as chosen)")
    for src in c["points"][0]["clean_flagged"]:
        note = "   (left out of the average)" if src in c["contrast_suites_left_out"] else ""
        print(f"    {src:16} {'':6} {'':6} " + " ".join(f"{p['clean_flagged'][src]:14.1%}" for _, p in cols) + note)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", type=Path, default=SCORES, help="the build's heldout-scores.npz")
    ap.add_argument("--out", type=Path, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    try:
        c = curves(args.scores)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    print_curves(c)
    if args.out:
        args.out.write_text(json.dumps(c, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
