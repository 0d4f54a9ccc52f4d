"""Rebuild ``safety_head.npz``, the learned head, from the project's lines and the shared
labelled sets.

    .venv/bin/python -m archivist_safety.build_classifier [--home DIR] [--report]

Data (:mod:`archivist_safety.corpus`): ``training/safe-*.txt`` and
``training/unsafe-<class>.txt`` (our own lines), and the third-party sets in
``../shared/data/safety-train/`` (harmful requests, toxic and clean social media,
hateful and neutral statements about groups, benign edgy requests, ordinary questions
and instructions), deduplicated and capped per source. Recipe, all in numpy and
deterministic (about 5 minutes to embed a fresh feature cache on 2 busy cores, then about
6 to fit; ``OPENBLAS_NUM_THREADS=1`` in front of the command avoids BLAS threads fighting
over busy cores):

1. embed every text with the fp32 MiniLM encoder cut after 4 layers
   (:mod:`archivist_safety.encoder`), and carried on to all 6 layers, one at a time
   exactly as at run time (cached under ``.cache/safety-features/``), and add the
   lexical features;
2. fit a softmax regression on each view (L2; safe and unsafe weighted equally overall,
   and within each side every source by the square root of its size, so no single data
   set dominates) by full-batch accelerated gradient descent; and a second pair, the
   *lines head*, on our own lines alone (the head shipped before the shared data, whose
   look-alike lines generalise to new sources' clean text better). The score is the
   average of the two heads' class probabilities: on the by-source validation the
   average ranked the shared sources' texts as well as the lines head (macro ROC AUC
   0.790 against 0.792) and caught more at the same clean share flagged (harmful
   requests 61% against 47%, texts 51% against 50%), where the all-data head alone
   ranked worse (0.758);
3. hold out BY SOURCE: each data set is scored by heads fitted on all the others
   (leave one source out), so no row is scored by a head that saw its data set. On
   those out-of-source scores (the two heads' average): the **warn** threshold is the
   lowest at which the clean rows flagged, averaged over the sources (less
   :data:`CONTRAST_SUITES`), are at most ``TARGET_WARN_FP``; the **block** threshold
   the lowest at which they are at most ``TARGET_BLOCK_FP``. A flag below the block threshold warns,
   one at or above it takes the category's action (block by default);
4. report, per source, caught and flagged at both thresholds and the ROC AUC (the
   out-of-source scores are kept in ``.cache/safety-features/heldout-scores.npz``);
5. refit on every row with those thresholds and write the weights and the report.

No benchmark row (XSTest, the toxicity set in ``../shared/data/safety``) is read here.
The encoder is built (from the local wheel) under ``--home`` (default
``.cache/safety-build`` in the checkout).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from archivist_safety import corpus
from archivist_safety.classifier import CLASSES, WEIGHTS, feature_matrix

TRAINING = corpus.TRAINING
ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / ".cache" / "safety-features"
L2 = 1e-2
L2_LINES = 3e-2  # the lines head's, as it was shipped alone
STEPS = 300
TARGET_WARN_FP = 0.05  # the ceiling on clean texts flagged, per source on average
# Clean texts blocked, per source on average: what people will not accept. The issue's
# ceiling for whole answers is 1%; 1.5% until December 7, when held out it blocked 1.4%
# of clean answers of 3+ sentences (an answer has several sentences to be blocked by).
# At 1%, 0.9% of the training sources' clean texts are blocked held out, 44.5% of the
# harmful ones (52.1% at 1.5%; caught, warned or blocked, stays 70.6%).
TARGET_BLOCK_FP = 0.01
# Texts whose first score is within this of the warn..block range also get the deep
# head's view (classifier.Head).
BAND = 0.2
# Sources whose clean rows are a template test suite of hard contrasts (HateCheck:
# counter-speech quoting hate, reclaimed slurs, negated hate), not everyday text. They
# are trained on and reported, but left out of the clean-text share the thresholds are
# chosen for: flagging them is what a user sees as a warning, not everyday text blocked.
CONTRAST_SUITES = ("hatecheck",)


def load_training(folder: Path = TRAINING) -> list[tuple[str, str, int]]:
    """Our own lines: (text, class, line index within its file) for every non-blank line."""
    rows: list[tuple[str, str, int]] = []
    for path in sorted(folder.glob("*.txt")):
        kind, _, rest = path.stem.partition("-")
        label = "safe" if kind == "safe" else rest
        if label not in CLASSES:
            raise ValueError(f"{path.name}: unknown class {label!r} (known: {', '.join(CLASSES)})")
        lines = [ln.strip() for ln in path.read_text("utf-8").splitlines()]
        for i, text in enumerate(t for t in lines if t and not t.startswith("#")):
            rows.append((text, label, i))
    return rows


def sample_weights(y: np.ndarray, sources: Sequence[str]) -> np.ndarray:
    """Half the weight on safe rows, half on unsafe; within a side, each source gets a
    share proportional to the square root of its row count."""
    src = np.array(sources)
    safe = y == 0
    w = np.zeros(len(y))
    for side in (safe, ~safe):
        names, counts = np.unique(src[side], return_counts=True)
        per_row = {n: np.sqrt(c) / c for n, c in zip(names, counts)}
        w[side] = [per_row[s] for s in src[side]]
        w[side] *= 0.5 / max(w[side].sum(), 1e-12)
    return w


def fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, l2: float = L2,
        steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression by Nesterov-accelerated gradient descent (deterministic).

    Features are standardised for the descent and the scaling folded back into the
    returned weights, so the run-time head takes raw features.
    """
    x = x.astype(np.float64)
    n, d = x.shape
    # The descent runs in float32 (half the time of float64 on these CPUs); the
    # standardisation and the folding back are float64.
    k = len(CLASSES)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xs = ((x - mean) / std).astype(np.float32)
    onehot = np.eye(k, dtype=np.float32)[y]
    if weights is None:
        safe = y == 0
        weights = np.where(safe, 0.5 / max(1, safe.sum()), 0.5 / max(1, (~safe).sum()))
    w_sample = (weights / weights.sum()).astype(np.float32)
    xb = np.hstack([xs, np.ones((n, 1), np.float32)])
    # Step 1/L, L bounding the loss's curvature: 0.5 * top eigenvalue of X'WX, plus l2.
    v = (np.ones(d + 1) / np.sqrt(d + 1)).astype(np.float32)
    for _ in range(50):
        v = xb.T @ (w_sample * (xb @ v))
        top = float(np.linalg.norm(v))
        v /= top
    lr = 1.0 / (0.5 * top + l2)
    theta = np.zeros((d + 1, k), np.float32)
    prev = theta.copy()
    reg = np.full((d + 1, 1), l2, np.float32)
    reg[-1] = 0.0
    for step in range(1, steps + 1):
        look = theta + np.float32((step - 1) / (step + 2)) * (theta - prev)
        z = xb @ look
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = xb.T @ ((p - onehot) * w_sample[:, None]) + reg * look
        prev, theta = theta, look - np.float32(lr) * grad
    theta = theta.astype(np.float64)
    w = theta[:-1] / std[:, None]
    b = theta[-1] - mean @ w
    return w.astype(np.float32), b.astype(np.float32)


def probabilities(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = x @ w + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def unsafe_scores(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1.0 - probabilities(x, w, b)[:, 0]


def macro_fp_threshold(scores: np.ndarray, y: np.ndarray, sources: np.ndarray, target: float) -> float:
    """Lowest threshold at which the share of safe rows flagged (score >= t), averaged
    over the sources that have safe rows, is at most ``target``."""
    safe = y == 0
    names = [s for s in np.unique(sources[safe])]
    candidates = np.unique(np.round(scores[safe], 4))
    best = 0.95
    for t in candidates[::-1]:
        t = float(t) + 1e-4
        rate = np.mean([float((scores[safe & (sources == s)] >= t).mean()) for s in names])
        if rate > target:
            break
        best = t
    return round(max(0.05, min(best, 0.95)), 4)


def roc_auc(scores: np.ndarray, unsafe: np.ndarray) -> float | None:
    pos, neg = scores[unsafe], scores[~unsafe]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    # average ranks for ties
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return round(float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))), 4)


def evaluate(scores: np.ndarray, y: np.ndarray, warn: float, block: float) -> dict[str, float | int | None]:
    unsafe = y != 0
    out: dict[str, float | int | None] = {"n_unsafe": int(unsafe.sum()), "n_safe": int((~unsafe).sum())}
    if unsafe.any():
        out["caught"] = round(float((scores[unsafe] >= warn).mean()), 4)
        out["blocked"] = round(float((scores[unsafe] >= block).mean()), 4)
    if (~unsafe).any():
        out["flagged_safe"] = round(float((scores[~unsafe] >= warn).mean()), 4)
        out["blocked_safe"] = round(float((scores[~unsafe] >= block).mean()), 4)
    out["auc"] = roc_auc(scores, unsafe)
    return out


def cascade_scores(first: np.ndarray, deep: np.ndarray, warn: float, block: float, band: float) -> np.ndarray:
    """What the run-time head gives: the first head's score, averaged with the deep
    head's where the first is within ``band`` of the warn..block range."""
    near = (first >= warn - band) & (first <= block + band)
    return np.where(near, (first + deep) / 2, first)


def features(rows: list[corpus.Row], home: Path, wheel_cache: Path | None,
             cache: Path = FEATURES) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    from archivist_safety.feature_cache import embeddings

    texts = [r.text for r in rows]
    cut, deep, recipe, layers, deep_layers = embeddings(texts, home, wheel_cache, cache)
    x = feature_matrix(texts, cut)
    xd = np.hstack([deep.astype(np.float32), x[:, cut.shape[1]:]])
    return x, xd, recipe, layers, deep_layers


def build(home: Path, target: Path = WEIGHTS, wheel_cache: Path | None = None, report: bool = False,
          shared: Path | None = corpus.SHARED, feature_cache: Path = FEATURES,
          thresholds: tuple[float, float] | None = None) -> dict:
    """Build the head into ``target`` and return its meta. With ``thresholds`` (warn,
    block) the by-source validation is skipped and those are written (a quick rebuild
    of the weights alone, as the tests do)."""
    rows = corpus.load(shared)
    x, xd, encoder_recipe, encoder_layers, deep_layers = features(rows, home, wheel_cache, feature_cache)
    y = np.array([CLASSES.index(r.label) for r in rows])
    sources = np.array([r.source for r in rows])
    subsources = np.array([r.subsource for r in rows])
    weights = sample_weights(y, list(sources))
    if thresholds is not None:
        return _write(target, x, xd, y, weights, thresholds[0], thresholds[1], {
            "encoder_recipe": encoder_recipe, "encoder_layers": encoder_layers, "deep_layers": deep_layers,
            "band": BAND, "n_train": len(rows), "threshold": thresholds[0], "block_threshold": thresholds[1],
            "validation": "none (thresholds given)", "_own": sources == corpus.OWN})
    # Held out by source: every row scored by heads that never saw its data set (the
    # lines head scores our own lines out of 5 folds of them).
    own = sources == corpus.OWN
    lines = (fit(x[own], y[own], l2=L2_LINES), fit(xd[own], y[own], l2=L2_LINES))
    first, deep = np.zeros(len(y)), np.zeros(len(y))
    for held in np.unique(sources):
        out = sources == held
        first[out] = unsafe_scores(x[out], *fit(x[~out], y[~out], weights[~out]))
        deep[out] = unsafe_scores(xd[out], *fit(xd[~out], y[~out], weights[~out]))
        if held != corpus.OWN:
            first[out] = (first[out] + unsafe_scores(x[out], *lines[0])) / 2
            deep[out] = (deep[out] + unsafe_scores(xd[out], *lines[1])) / 2
    own_rows = np.flatnonzero(own)
    for f in range(5):
        test, train = own_rows[f::5], np.setdiff1d(own_rows, own_rows[f::5])
        first[test] = (first[test] + unsafe_scores(x[test], *fit(x[train], y[train], l2=L2_LINES))) / 2
        deep[test] = (deep[test] + unsafe_scores(xd[test], *fit(xd[train], y[train], l2=L2_LINES))) / 2
    both = (first + deep) / 2
    np.savez(feature_cache / "heldout-scores.npz", first=first, deep=deep, y=y, sources=sources, subsources=subsources)
    everyday = ~np.isin(sources, CONTRAST_SUITES)
    warn = macro_fp_threshold(both[everyday], y[everyday], sources[everyday], TARGET_WARN_FP)
    block = max(warn, macro_fp_threshold(both[everyday], y[everyday], sources[everyday], TARGET_BLOCK_FP))
    scores = cascade_scores(first, deep, warn, block, BAND)
    by_source = {s: evaluate(scores[sources == s], y[sources == s], warn, block) for s in np.unique(sources)}
    by_subsource = {s: evaluate(scores[subsources == s], y[subsources == s], warn, block)
                    for s in np.unique(subsources) if s.split(":")[0] != s or s not in by_source}
    heldout = evaluate(scores, y, warn, block)
    heldout["auc_first"] = roc_auc(first, y != 0)
    heldout["auc_deep"] = roc_auc(deep, y != 0)
    heldout["auc_average"] = roc_auc(both, y != 0)
    if report:
        for r, score in zip(rows, scores):
            if (score >= warn) != (r.label != "safe"):
                print(f"{'MISS' if r.label != 'safe' else 'FP  '} {score:.2f} {r.label:10} {r.subsource:28} {r.text[:150]!r}")
    meta = {"encoder_recipe": encoder_recipe, "encoder_layers": encoder_layers, "deep_layers": deep_layers,
            "band": BAND, "n_train": len(rows), "threshold": warn, "block_threshold": block, "l2": L2,
            "steps": STEPS, "target_warn_fp": TARGET_WARN_FP, "target_block_fp": TARGET_BLOCK_FP,
            "validation": "by source", "contrast_suites": list(CONTRAST_SUITES), "heldout": heldout, "by_source": by_source,
            "by_subsource": by_subsource,
            "features": "minilm-l6-v2 fp32, first 4 layers (and all 6 for the deep head), "
            "mean-pooled (384) + lexical: profanity p (de-obfuscated text), slur, targeted insult, rule hate "
            "score, fiction, real-life, intent rules per category; averaged with the lines head",
            "l2_lines": L2_LINES, "_own": own}
    return _write(target, x, xd, y, weights, warn, block, meta)


def _write(target: Path, x: np.ndarray, xd: np.ndarray, y: np.ndarray, weights: np.ndarray, warn: float,
           block: float, meta: dict) -> dict:
    """Fit both heads on every row, and the lines head on our own lines, and save them
    with ``meta``."""
    w, b = fit(x, y, weights)
    wd, bd = fit(xd, y, weights)
    own = np.array(meta.pop("_own"))
    lw, lb = fit(x[own], y[own], l2=L2_LINES)
    lwd, lbd = fit(xd[own], y[own], l2=L2_LINES)
    np.savez_compressed(
        target,
        weights=w,
        bias=b,
        deep_weights=wd,
        deep_bias=bd,
        lines_weights=lw,
        lines_bias=lb,
        lines_deep_weights=lwd,
        lines_deep_bias=lbd,
        deep_layers=np.array(meta["deep_layers"]),
        band=np.array(BAND),
        threshold=np.array(warn),
        block_threshold=np.array(block),
        classes=np.array("\n".join(CLASSES)),
        encoder_recipe=np.array(meta["encoder_recipe"]),
        encoder_layers=np.array(meta["encoder_layers"]),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archivist_safety.build_classifier", description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=ROOT / ".cache" / "safety-build",
                    help="where the encoder is built (models/ and plugins/safety/ below it)")
    ap.add_argument("--wheel-cache", type=Path, default=ROOT / ".cache" / "wheels")
    ap.add_argument("--shared", type=Path, default=corpus.SHARED, help="the shared training sets")
    ap.add_argument("--features", type=Path, default=FEATURES, help="the embedded features' cache")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument("--report", action="store_true", help="print the out-of-source rows it gets wrong")
    args = ap.parse_args(argv)
    meta = build(args.home, args.out, args.wheel_cache, args.report, args.shared, args.features)
    print(json.dumps(meta, indent=2))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
