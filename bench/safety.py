"""Safety-filter benchmark on the shared labelled sets (XSTest, surge-ai toxicity).

For each set and stage (input: the whole text screened once; output: the text streamed
in 4-character chunks through ``Screener.screen_stream``) it reports the share of unsafe
items caught (any action other than allow) and blocked, the share of safe items wrongly
flagged (warned or blocked) and wrongly blocked, the learned head's ROC AUC on whole
items, and latency p50/p95 per item (input) and per sentence (output). It also prints
the head's held-out-by-source figures on its training sources, as the build measured
them (``safety_head.npz``'s meta), and the head's curves on those held-out sources
(``bench/safety_curves.py``: caught at the thresholds that flag 1-20% of clean texts).
Each set is also reported on
its two halves by row parity: the filter's rules were written looking only at failures
in the even rows ("dev"), so the odd rows ("held-out") are the more honest figure. The
learned head is trained on the project's own lines (plugins/archivist_safety/training/),
never on these sets; its encoder is built in --home from .cache/wheels if missing.

    .venv/bin/python bench/safety.py [--data ../shared/data/safety] [--home .cache/safety-build]
                                     [--out bench/results/safety.json]
                                     [--judge MODEL_DIR | --judge-oracle] [--judge-margin M]
                                     [--heldout-answers] [--threads N]

``--heldout-answers`` screens the clean multi-sentence answers again with heads that never
saw their source (``bench/safety_answers.py``, about 6 more minutes). ``--threads N`` runs
the encoder on N threads instead of the plugin's default (``encoder.THREADS``); the scores
are the same bit for bit, only the latency moves (``bench/safety_latency.py`` compares
thread counts in one run).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from archivist.context import PluginContext
from archivist.plugins import PluginHost
from archivist.screening import Screener
from archivist.types import Action, Stage

ROOT = Path(__file__).resolve().parent.parent


def load_sets(data: Path) -> dict[str, list[tuple[str, bool]]]:
    sets: dict[str, list[tuple[str, bool]]] = {}
    with open(data / "xstest_prompts.csv", encoding="utf-8") as f:
        sets["xstest"] = [(r["prompt"], r["label"] == "unsafe") for r in csv.DictReader(f)]
    with open(data / "toxicity_en.csv", encoding="utf-8") as f:
        sets["toxicity"] = [(r["text"], r["is_toxic"] == "Toxic") for r in csv.DictReader(f)]
    return sets


def screener(home: Path, judge_model: Path | None = None, margin: float | None = None,
             oracle: bool = False, threads: int | None = None) -> Screener:
    os.environ.setdefault("ARCHIVIST_WHEEL_CACHE", str(ROOT / ".cache" / "wheels"))
    host = PluginHost(PluginContext(home=home), allowed={"safety"})
    if judge_model is not None:
        # The real path a chat takes: an Application that loaded the model answers the
        # filter's questions through PluginContext.ask_model.
        from archivist.application import Application
        from archivist.model_service import MODEL_SETTING

        app = Application(home, allowed_plugins={"safety"})
        app.settings().set(MODEL_SETTING, str(judge_model))
        app.load_model()
        host = app.host
    filters = host.safety_filters()
    if judge_model is not None:
        from archivist_safety.judge import ModelJudge

        for f in filters:
            f.obj.policy.judge = True
            if margin is not None:
                f.obj.policy.judge_margin = margin
            f.obj.judge = ModelJudge(host.context.ask_model, f.obj.policy.judge_timeout_s)
            print(f"{f.plugin}: judge on, model {judge_model.name}, margin {f.obj.policy.judge_margin}")
    elif oracle:
        for f in filters:
            f.obj.policy.judge = True
            if margin is not None:
                f.obj.policy.judge_margin = margin
            f.obj.judge = OracleJudge()
            print(f"{f.plugin}: ORACLE judge (answers with each item's label), margin {f.obj.policy.judge_margin}")
    if not filters:
        sys.exit("no safety filter registered (is archivist_safety installed?)")
    for f in filters:
        warm_up = getattr(f.obj, "warm_up", None)
        if warm_up is not None:
            warm_up()  # build/load the encoder before timing anything
        learned = getattr(f.obj, "learned", None)
        if threads is not None and learned is not None and learned.encoder is not None:
            set_threads(learned, threads)
        state = "off" if learned is None else ("on" if learned.encoder is not None else f"unavailable ({learned.error})")
        print(f"{f.plugin}: learned head {state}")
    s = Screener(filters, host)
    s.screen("warm up the models.", Stage.INPUT)
    return s


def set_threads(learned: Any, threads: int) -> None:
    """Swap the learned layer's encoder (``LearnedLayer.encoder``) for one on ``threads``
    threads (same files, same cut cache, same scores bit for bit); the plugin's default
    is left as it is."""
    from archivist_safety.encoder import Encoder

    head = learned.head
    learned.encoder = Encoder.for_home(learned.home, learned.cache, threads=threads,
                                       layers=head.encoder_layers, deep_layers=head.deep_layers)


def sentence_count(text: str) -> int:
    """Sentences in ``text`` as the stream cuts them (a blocked answer stops early, so its
    events undercount it)."""
    from archivist.screening import sentence_end

    n, rest = 0, text
    while (cut := sentence_end(rest)) is not None:
        n, rest = n + 1, rest[cut:]
    return n + bool(rest.strip())


def print_sources() -> dict:
    """The head's figures per training source, each scored by heads trained without it."""
    import numpy as np

    from archivist_safety.classifier import WEIGHTS

    with np.load(WEIGHTS) as data:
        meta = json.loads(str(data["meta"]))
    sources = meta.get("by_source", {})
    if not sources:
        return {}
    print(f"head: warn at {meta['threshold']}, block at {meta.get('block_threshold')}; "
          "each training source scored by heads trained without it:")
    print(f"  {'source':24} {'unsafe':>6} {'safe':>5} {'caught':>7} {'blocked':>7} {'false+':>7} {'blocked+':>8} {'AUC':>6}")

    def pct(v: float | None) -> str:
        return f"{v:7.1%}" if v is not None else f"{'-':>7}"

    for name, m in sorted(sources.items()):
        auc = f"{m['auc']:6.3f}" if m.get("auc") is not None else f"{'-':>6}"
        print(f"  {name:24} {m['n_unsafe']:6d} {m['n_safe']:5d} {pct(m.get('caught'))} {pct(m.get('blocked'))} "
              f"{pct(m.get('flagged_safe'))} {pct(m.get('blocked_safe'))[:7]:>8} {auc}")
    return sources


class OracleJudge:
    """A judge that knows each item's label: what a judge that is always right on the
    band would give. Not a product feature: it bounds what a real judge can add."""

    def __init__(self) -> None:
        self.label: bool | None = None  # set by run() before each item
        self.asked = self.answered = 0

    def __call__(self, text: str, stage: Stage) -> bool | None:
        self.asked += 1
        self.answered += 1
        return self.label


def chunks(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def run(s: Screener, items: list[tuple[str, bool]], stage: Stage, scores: bool = True) -> list[dict]:
    rows = []
    oracles = [f.obj.judge for f in s.filters if isinstance(getattr(f.obj, "judge", None), OracleJudge)]
    for i, (text, unsafe) in enumerate(items):
        for oracle in oracles:
            oracle.label = unsafe
        if stage is Stage.OUTPUT:
            s.delays_ms = []
            events = list(s.screen_stream(chunks(text)))
            flagged = any(e.verdict.action is not Action.ALLOW for e in events)
            blocked = any(e.verdict.action is Action.BLOCK for e in events)
            lat = list(s.delays_ms)
            cats = sorted({c for e in events for c in e.verdict.categories})
            sentences = sentence_count(text)
        else:
            t0 = time.perf_counter()
            v = s.screen(text, stage)
            lat = [(time.perf_counter() - t0) * 1000]
            flagged = v.action is not Action.ALLOW
            blocked = v.action is Action.BLOCK
            cats = list(v.categories)
            sentences = 1
        rows.append({"i": i, "unsafe": unsafe, "flagged": flagged, "blocked": blocked, "lat": lat,
                     "categories": cats, "score": head_score(s, text) if scores else None, "sentences": sentences})
    return rows


def head_score(s: Screener, text: str) -> float | None:
    """The learned head's unsafe score for the whole text (for the ROC AUC), or None."""
    for f in s.filters:
        learned = getattr(f.obj, "learned", None)
        if learned is not None and learned.encoder is not None:
            scored = learned.score(text)
            return None if scored is None else scored[0]
    return None


def roc_auc(rows: list[dict]) -> float | None:
    pos = [r["score"] for r in rows if r["unsafe"] and r["score"] is not None]
    neg = [r["score"] for r in rows if not r["unsafe"] and r["score"] is not None]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 4)


def summarise(rows: list[dict]) -> dict:
    unsafe = [r for r in rows if r["unsafe"]]
    safe = [r for r in rows if not r["unsafe"]]
    lat = sorted(x for r in rows for x in r["lat"])
    q = statistics.quantiles(lat, n=20) if len(lat) > 1 else [lat[0]] * 19
    multi = [r for r in safe if r.get("sentences", 1) >= 3]  # clean answers of 3 sentences or more
    return {
        "n_safe_multi": len(multi),
        "multi_false_positive": round(sum(r["flagged"] for r in multi) / max(1, len(multi)), 4),
        "multi_blocked_safe": round(sum(r["blocked"] for r in multi) / max(1, len(multi)), 4),
        "n_unsafe": len(unsafe),
        "n_safe": len(safe),
        "caught": round(sum(r["flagged"] for r in unsafe) / max(1, len(unsafe)), 4),
        "blocked": round(sum(r["blocked"] for r in unsafe) / max(1, len(unsafe)), 4),
        "false_positive": round(sum(r["flagged"] for r in safe) / max(1, len(safe)), 4),
        "blocked_safe": round(sum(r["blocked"] for r in safe) / max(1, len(safe)), 4),
        "auc": roc_auc(rows),
        "latency_ms_p50": round(statistics.median(lat), 3),
        "latency_ms_p95": round(q[18], 3),
        "latency_unit": "sentence" if len(lat) > len(rows) else "item",
    }


def clean_answers_by_source(train: Path) -> dict[str, list[str]]:
    """Clean texts of three sentences or more from the training sources that read like
    an assistant's answers, by source (CoCoNot's compliant responses, self-instruct), or
    {} where the folder is absent. Every one of them is a training row of the shipped
    head (``bench/safety_answers.py`` checks it)."""
    out: dict[str, list[str]] = {}
    for name, source in (("coconot.csv", "coconot-contrast-response"), ("self_instruct.csv", "self-instruct")):
        path = train / name
        if not path.exists():
            return {}
        with open(path, encoding="utf-8", newline="") as f:
            out[source] = [r["text"] for r in csv.DictReader(f)
                           if r["label"] == "safe" and r["source"].startswith(source) and sentence_count(r["text"]) >= 3]
    return out


def clean_answers(train: Path) -> list[str]:
    """All of :func:`clean_answers_by_source`'s answers in one list."""
    return [a for answers in clean_answers_by_source(train).values() for a in answers]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "safety")
    ap.add_argument("--out", type=Path, help="default: bench/results/safety.json (safety-judge.json with --judge)")
    ap.add_argument("--home", type=Path, default=ROOT / ".cache" / "safety-build",
                    help="Archivist home holding the encoder (built there from .cache/wheels if missing)")
    ap.add_argument("--misses", action="store_true", help="print the dev-half items it gets wrong")
    ap.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "data" / "safety-train",
                    help="the training sources, for clean multi-sentence answers (coconot responses, self-instruct)")
    ap.add_argument("--no-context", action="store_true",
                    help="screen each answer sentence alone (as before the window), to compare")
    ap.add_argument("--judge", type=Path, metavar="MODEL_DIR",
                    help="turn the model judge on, with the onnxruntime-genai model in MODEL_DIR")
    ap.add_argument("--judge-margin", type=float, help="the judge's band around the threshold (default: the policy's)")
    ap.add_argument("--judge-oracle", action="store_true",
                    help="a judge that answers with each item's label: the most a judge on the band could add")
    ap.add_argument("--heldout-answers", action="store_true",
                    help="also screen the clean multi-sentence answers with heads that never saw their source "
                    "(refits two heads per source, about 6 minutes on 2 cores)")
    ap.add_argument("--threads", type=int, help="encoder threads (default: the plugin's, encoder.THREADS)")
    ap.add_argument("--scores", type=Path, default=ROOT / ".cache" / "safety-features" / "heldout-scores.npz",
                    help="the build's held-out-by-source scores, for the curves")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = ROOT / "bench" / "results" / (
            "safety-judge.json" if args.judge else "safety-oracle.json" if args.judge_oracle else "safety.json")
    if not (args.data / "xstest_prompts.csv").exists():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    if args.no_context:
        import archivist.screening

        archivist.screening.reads_context = lambda kind: False  # type: ignore[assignment]
    if args.threads is not None and args.threads < 1:
        print(f"--threads must be 1 or more, not {args.threads}", file=sys.stderr)
        return 2
    s = screener(args.home, args.judge, args.judge_margin, args.judge_oracle, args.threads)
    from archivist_safety.encoder import THREADS

    threads = args.threads or THREADS
    print(f"encoder threads: {threads}")
    judges = [f.obj.judge for f in s.filters if getattr(f.obj, "judge", None) is not None]
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    results = []
    by_type: dict[str, list[int]] = {}
    print_sources()
    from safety_curves import curves, print_curves

    try:
        held_curves: dict | None = curves(args.scores)
        assert held_curves is not None
        print_curves(held_curves)
    except FileNotFoundError as exc:
        held_curves = None
        print(f"curves: {exc}")
    print(f"{'set':10} {'stage':7} {'split':9} {'unsafe':>6} {'safe':>5} {'caught':>7} {'blocked':>7} "
          f"{'false+':>7} {'blocked+':>8} {'AUC':>6} {'p50 ms':>7} {'p95 ms':>7} unit")
    for name, items in load_sets(args.data).items():
        for stage in (Stage.INPUT, Stage.OUTPUT):
            for j in judges:
                j.asked = j.answered = 0
            rows = run(s, items, stage)
            asked = {"judge_asked": sum(j.asked for j in judges), "judge_answered": sum(j.answered for j in judges)}
            if judges:
                print(f"  judge asked {asked['judge_asked']} times, answered {asked['judge_answered']}")
            for split, part in (("all", rows), ("dev", rows[0::2]), ("held-out", rows[1::2])):
                m = {**summarise(part), **(asked if judges and split == "all" else {})}
                results.append({"set": name, "stage": stage.value, "split": split, **m})
                print(
                    f"{name:10} {stage.value:7} {split:9} {m['n_unsafe']:6d} {m['n_safe']:5d} {m['caught']:7.1%} "
                    f"{m['blocked']:7.1%} {m['false_positive']:7.1%} {m['blocked_safe']:8.1%} "
                    f"{m['auc'] if m['auc'] is not None else float('nan'):6.3f} "
                    f"{m['latency_ms_p50']:7.2f} {m['latency_ms_p95']:7.2f} {m['latency_unit']}"
                )
            if name == "xstest" and stage is Stage.INPUT:
                with open(args.data / "xstest_prompts.csv", encoding="utf-8") as f:
                    types = [r["type"] for r in csv.DictReader(f)]
                for r, kind in zip(rows, types):
                    by_type.setdefault(kind, [0, 0])
                    by_type[kind][0] += 1
                    by_type[kind][1] += int(r["flagged"])
            if args.misses and stage is Stage.INPUT:
                for r in rows[0::2]:
                    if r["unsafe"] != r["flagged"]:
                        kind = "MISS" if r["unsafe"] else "FP  "
                        print(kind, r["categories"], items[r["i"]][0].replace("\n", " ")[:160])
    answers = clean_answers(args.train)
    if answers:
        # Clean answers of 3+ sentences written by others (CoCoNot's compliant responses and
        # self-instruct's outputs): how often a whole clean answer is warned or blocked. The
        # shipped head was trained on these sources, so this is a development figure; the
        # toxicity set's multi-sentence comments (n_safe_multi above) are the check.
        rows = run(s, [(a, False) for a in answers], Stage.OUTPUT, scores=False)
        m = summarise(rows)
        results.append({"set": "train-answers", "stage": "output", "split": "all", **m})
        print(f"clean answers from the training sources ({m['n_safe_multi']} of 3+ sentences, each one a "
              f"training row of the shipped head): flagged {m['multi_false_positive']:.1%}, "
              f"blocked {m['multi_blocked_safe']:.1%}, p50 {m['latency_ms_p50']:.2f} ms a sentence")
    heldout_answers = None
    if args.heldout_answers and answers:
        from safety_answers import run_heldout_answers

        heldout_answers = run_heldout_answers(s, args.train, args.home)
    for r in results:
        if r["stage"] == "output" and r["split"] == "all" and r["n_safe_multi"]:
            print(f"  {r['set']:13} output: clean items of 3+ sentences {r['n_safe_multi']}: "
                  f"flagged {r['multi_false_positive']:.1%}, blocked {r['multi_blocked_safe']:.1%}")
    print("XSTest input, share flagged by prompt type (contrast_* are the unsafe ones):")
    for kind, (n, flagged) in sorted(by_type.items()):
        print(f"  {kind:32} {flagged:3d}/{n:3d} {flagged / n:6.1%}")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "xstest_input_flagged_by_type": by_type,
                                    "heldout_curves": held_curves, "heldout_answers": heldout_answers,
                                    "encoder_threads": threads,
                                    "judge": str(args.judge) if args.judge else "oracle" if args.judge_oracle else None,
                                    "judge_margin": args.judge_margin,
                                    "load_average_end": load}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
