"""Language-model benchmark: the converted default model against llama.cpp on the same GGUF.

    python bench/llm.py                 # everything; writes bench/results/llm.json
    python bench/llm.py --repeats 5 --skip-cli

For the default model (SmolLM2-135M-Instruct, Q4_1 GGUF converted to ONNX by
``archivist_models``) and, in the same run, llama.cpp (llama-cpp-python, built from
source with ``-DGGML_NATIVE=ON`` into the bench-only venv ``.bench-venv-llama``, created
here when missing) on the same GGUF file, this measures, each engine in its own process
at ``--threads`` threads (2 by default):

* prompt processing tokens/s over a fixed prompt (``--prompt-tokens`` of XQuAD text);
* time to first token (prompt pass + choosing the first token);
* decode tokens/s over ``--new-tokens`` greedy tokens (end-of-sequence masked, so both
  engines generate exactly as many; counted over the tokens after the first);
* peak memory: the speed worker's peak RSS (VmHWM: interpreter + engine + model);
* perplexity on a fixed text: the first XQuAD contexts, joined with blank lines, cut to
  ``--ppl-tokens`` tokens, scored in non-overlapping ``--window``-token windows from an
  empty cache, each window from its second token on; no BOS (the GGUF's add_bos_token is
  false). Both engines get the very same token ids.

Timings are the median of ``--repeats`` runs, each run a fresh process (engines
alternating) after one short warm-up generation. A last row times ``archivist ask`` from
spawning the process to the first token, against a throw-away home folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LLAMA_VENV = ROOT / ".bench-venv-llama"
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
CACHE = ROOT / ".cache" / "bench-llm"  # the converted model
GGUF_CACHE = ROOT / ".cache" / "smollm2"  # wheel + GGUF, shared with the tests
XQUAD = ROOT.parent / "shared" / "data" / "xquad" / "xquad.en.json"
DEFAULT_OUT = BENCH / "results" / "llm.json"
QUESTION = "In one sentence, what is a library?"


def _project_python() -> str:
    """The interpreter that has archivist and onnxruntime-genai: this one, or .venv's."""
    try:
        import onnxruntime_genai  # noqa: F401

        import archivist_models  # noqa: F401

        return sys.executable
    except ImportError:
        venv = ROOT / ".venv" / "bin" / "python"
        if venv.exists() and Path(sys.executable).resolve() != venv.resolve():
            os.execv(str(venv), [str(venv), *sys.argv])  # re-run under the project venv
        raise SystemExit("bench/llm.py needs the project venv (archivist + onnxruntime-genai)") from None


def log(message: str) -> None:
    print(f"[llm] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- inputs


def ensure_llama_venv() -> Path:
    """The bench venv's python, with llama-cpp-python built there from source if missing."""
    python = LLAMA_VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import llama_cpp"], capture_output=True)
        if probe.returncode == 0:
            return python
    log(f"creating {LLAMA_VENV.name} and building {LLAMA_CPP_PYTHON} from source "
        "(llama.cpp with -DGGML_NATIVE=ON; several minutes on 2 cores)")
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(LLAMA_VENV)], check=True)
    env = dict(os.environ, CMAKE_ARGS="-DGGML_NATIVE=ON",
               CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    subprocess.run([*nice, str(python), "-m", "pip", "install", "--disable-pip-version-check",
                    "--no-binary", "llama-cpp-python", LLAMA_CPP_PYTHON], check=True, env=env)
    return python


def model_files(args: argparse.Namespace) -> tuple[Path, Path]:
    """The default GGUF and the ONNX folder converted from it (built once, cached)."""
    gguf, folder = args.gguf, args.model_dir
    if gguf is None or folder is None:
        try:
            from archivist_models import default
        except ImportError as exc:
            raise SystemExit(f"archivist_models.default is missing ({exc}); "
                             "pass --gguf and --model-dir") from exc
        if gguf is None:
            gguf = Path(default.fetch_default_gguf(GGUF_CACHE))
        if folder is None:
            log("building the default ONNX model (cached after the first run)")
            folder = Path(default.build_default_model(CACHE / "models", GGUF_CACHE))
    return Path(gguf).resolve(), Path(folder).resolve()


def xquad_contexts(path: Path) -> list[str]:
    if not path.is_file():
        raise SystemExit(f"{path} not found: the perplexity text is XQuAD's English file "
                         "(shared data, read in place); pass --xquad PATH")
    data = json.loads(path.read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


def texts(contexts: list[str], ppl_tokens: int, prompt_tokens: int) -> dict[str, str]:
    """Perplexity text: the first contexts (about 4 chars a token, with a wide margin).
    Speed prompt: contexts from the end of the file, so it is not the scored text."""
    def take(items: list[str], chars: int) -> str:
        out: list[str] = []
        for item in items:
            out.append(item)
            if sum(map(len, out)) >= chars:
                break
        return "\n\n".join(out)

    return {"ppl": take(contexts, ppl_tokens * 6), "prompt": take(contexts[::-1], prompt_tokens * 6)}


# ---------------------------------------------------------------------------- workers


def run_worker(python: Path | str, script: str, mode: str, model: Path, job: dict[str, Any],
               threads: int, work: Path) -> dict[str, Any]:
    job_file = work / f"job-{mode}.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    out = work / f"out-{script}-{mode}.json"
    out.unlink(missing_ok=True)
    cmd = [str(python), str(BENCH / script), mode, "--model", str(model), "--job", str(job_file),
           "--out", str(out), "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))  # llama.cpp's OpenMP pool
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"{script} {mode} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def compare_ids(a: list[int], b: list[int]) -> dict[str, Any]:
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if first is None and len(a) != len(b):
        first = min(len(a), len(b))
    return {"identical": a == b, "onnx_len": len(a), "llamacpp_len": len(b),
            "first_difference": first}


def eos_ids(folder: Path) -> list[int]:
    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    eos = config["model"].get("eos_token_id", [])
    return [int(e) for e in (eos if isinstance(eos, list) else [eos])]


def time_cli(folder: Path, repeats: int, quiet: float = 100.0, max_wait: float = 0.0) -> dict[str, Any]:
    """``archivist ask`` from spawn to first token: a fresh process, a new home folder,
    ``--no-docs`` (with nothing indexed the assistant would decline without generating),
    one token, on the benchmarked model folder. Spawn-to-exit is the upper bound; the
    CLI's own ``startup_ttft_ms`` starts at its module import, after interpreter start."""
    exe = Path(sys.executable).with_name("archivist")
    if not exe.exists():
        return {"status": "n/a (CLI missing)"}
    runs = []
    for _ in range(repeats):
        pressure = wait_for_quiet(quiet, max_wait)
        with tempfile.TemporaryDirectory(prefix="archivist-bench-home-") as home:
            cmd = [str(exe), "--home", home, "ask", QUESTION, "--json", "--max-tokens", "1",
                   "--no-docs", "--model", str(folder)]
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            wall = time.perf_counter() - started
        if proc.returncode != 0:
            return {"status": f"n/a (archivist ask failed: {proc.stderr.strip()[-300:]})",
                    "command": cmd}
        try:
            payload = json.loads(proc.stdout)
        except ValueError:
            return {"status": "n/a (archivist ask --json printed no JSON)", "stdout": proc.stdout[-300:]}
        if payload.get("startup_ttft_ms") is None:
            return {"status": "n/a (archivist ask generated no token: "
                              f"{str(payload.get('answer'))[:120]!r})", "command": cmd}
        runs.append({"spawn_to_exit_ms": wall * 1000.0, "cpu_pressure_before": pressure,
                     "startup_ttft_ms": payload.get("startup_ttft_ms"),
                     "ttft_ms": (payload.get("timings") or {}).get("ttft_ms", payload.get("ttft_ms"))})
    median = lambda key: _median([r[key] for r in runs if r[key] is not None])  # noqa: E731
    return {"status": "ok", "runs": runs, "spawn_to_exit_ms": median("spawn_to_exit_ms"),
            "startup_ttft_ms": median("startup_ttft_ms"), "command": cmd[:2] + ["HOME"] + cmd[3:]}


def summarize_profile(path: Path, new_tokens: int, top: int = 8) -> dict[str, Any]:
    """Where onnxruntime spends the measured generation's time, from its profile JSON:
    per op type and the slowest nodes, for the prompt pass and the decode steps apart.
    The measured generation is the last ``new_tokens`` model runs (the first a prompt pass)."""
    events = json.loads(path.read_text(encoding="utf-8"))
    runs = [e for e in events if e.get("name") == "model_run"][-new_tokens:]
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]

    def within(run_list: list[dict[str, Any]]) -> dict[str, Any]:
        spans = [(r["ts"], r["ts"] + r["dur"]) for r in run_list]
        by_op: dict[str, float] = {}
        by_node: dict[str, float] = {}
        for e in nodes:
            if any(a <= e["ts"] <= b for a, b in spans):
                op = e.get("args", {}).get("op_name", "?")
                by_op[op] = by_op.get(op, 0.0) + e["dur"]
                name = e["name"][: -len("_kernel_time")]
                by_node[name] = by_node.get(name, 0.0) + e["dur"]
        total = sum(r["dur"] for r in run_list)
        per = 1000.0 * max(len(run_list), 1)
        return {
            "runs": len(run_list), "ms_per_run": total / per,
            "kernel_ms_per_run": sum(by_op.values()) / per,
            "op_types_ms_per_run": {k: round(v / per, 3) for k, v in
                                    sorted(by_op.items(), key=lambda kv: -kv[1])[:top]},
            "slowest_nodes_ms_per_run": {k: round(v / per, 3) for k, v in
                                         sorted(by_node.items(), key=lambda kv: -kv[1])[:top]},
        }

    return {"prompt_pass": within(runs[:1]), "decode_step": within(runs[1:])}


def cpu_pressure() -> float:
    """Share of the last 10 s some task waited for a CPU (/proc/pressure/cpu), in %;
    the 1-minute load average per CPU x 100 where PSI is missing."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(dict(f.split("=") for f in line.split()[1:])["avg10"])
    except (OSError, KeyError, ValueError, IndexError):
        return 100.0 * os.getloadavg()[0] / (os.cpu_count() or 1)


def wait_for_quiet(threshold: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until CPU pressure falls under ``threshold``; return it."""
    deadline = time.monotonic() + max_wait
    pressure = cpu_pressure()
    if pressure >= threshold and max_wait > 0:
        log(f"CPU pressure {pressure:.0f}% (others are busy); waiting up to {max_wait:.0f} s")
    while pressure >= threshold and time.monotonic() < deadline:
        time.sleep(2.0)
        pressure = cpu_pressure()
    return pressure


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = sorted(f for f in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni",
                                           "avx_vnni", "avx512_bf16", "amx_int8") if f in have)
                break
    except OSError:
        pass
    memory = None
    try:
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cpu_flags": flags, "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)), "memory_mb": memory,
            "os": platform.platform(), "python": platform.python_version(),
            "load_average_start": os.getloadavg()}


# ------------------------------------------------------------------------------ report

METRICS = [("prompt_tok_s", "prompt tok/s", "{:.0f}"), ("ttft_ms", "TTFT ms", "{:.1f}"),
           ("decode_tok_s", "decode tok/s", "{:.1f}"), ("peak_rss_mb", "peak RSS MiB", "{:.0f}"),
           ("perplexity", "perplexity", "{:.4f}")]


def render(rows: dict[str, dict[str, float]], result: dict[str, Any]) -> str:
    names = list(rows)
    widths = [max(12, len(label)) for _, label, _ in METRICS]
    head = f"{'engine':<22}" + "".join(f"{label:>{w + 2}}" for (_, label, _), w in zip(METRICS, widths))
    lines = [head, "-" * len(head)]
    for name in names:
        cells = [fmt.format(rows[name][key]) if rows[name].get(key) is not None else "n/a"
                 for key, _, fmt in METRICS]
        lines.append(f"{name:<22}" + "".join(f"{c:>{w + 2}}" for c, w in zip(cells, widths)))
    ratio = result["ratio_onnx_over_llamacpp"]
    cells = [f"{ratio[key]:.3f}" if ratio.get(key) is not None else "n/a" for key, _, _ in METRICS]
    lines.append(f"{'ratio onnx/llama.cpp':<22}" + "".join(f"{c:>{w + 2}}" for c, w in zip(cells, widths)))
    cli = result["cli"]
    if cli.get("status") == "ok":
        lines.append(f"archivist ask, spawn to exit with 1 token: {cli['spawn_to_exit_ms']:.0f} ms "
                     f"(its own start-to-first-token figure: {cli['startup_ttft_ms']:.0f} ms)")
    else:
        lines.append(f"archivist ask, spawn to first token: {cli.get('status')}")
    for goal in result["targets"].values():
        lines.append(f"  [{'PASS' if goal['met'] else 'FAIL' if goal['met'] is False else ' n/a'}] "
                     f"{goal['what']}: {goal['value']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--ppl-tokens", type=int, default=4096)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--gguf", type=Path, help="GGUF file (default: the default model's)")
    parser.add_argument("--model-dir", type=Path, help="ONNX model folder (default: built from the GGUF)")
    parser.add_argument("--xquad", type=Path, default=XQUAD)
    parser.add_argument("--skip-cli", action="store_true", help="don't time `archivist ask`")
    parser.add_argument("--profile", action="store_true",
                        help="one more ONNX speed run with onnxruntime profiling; shows where time goes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quiet-pressure", type=float, default=10.0,
                        help="before each timed run, wait until CPU pressure (PSI avg10, %%) is below this")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="seconds to wait for that before timing anyway (noted in the JSON)")
    args = parser.parse_args(argv)

    onnx_python = _project_python()
    contexts = xquad_contexts(args.xquad)
    llama_python = ensure_llama_venv()
    gguf, folder = model_files(args)
    log(f"GGUF {gguf}\n[llm] ONNX {folder}")

    result: dict[str, Any] = {"machine": machine(), "threads": args.threads, "repeats": args.repeats,
                              "gguf": str(gguf), "onnx_model": str(folder)}
    engines = {"onnxruntime-genai": (onnx_python, "llm_onnx.py", folder),
               "llama.cpp": (llama_python, "llm_llamacpp.py", gguf)}
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        work = Path(tmp)
        text = texts(contexts, args.ppl_tokens, args.prompt_tokens)
        log("tokenising with both tokenizers")
        ids = {name: run_worker(py, script, "tokenize", model, {"texts": text}, args.threads, work)["ids"]
               for name, (py, script, model) in engines.items()}
        onnx_ids, llama_ids = ids["onnxruntime-genai"], ids["llama.cpp"]
        agreement = {key: compare_ids(onnx_ids[key], llama_ids[key]) for key in text}
        result["tokenizers"] = agreement
        for key, value in agreement.items():
            log(f"tokenizers agree on the {key} text: {value['identical']} "
                f"({value['onnx_len']} vs {value['llamacpp_len']} tokens)")
        ppl_ids = onnx_ids["ppl"][: args.ppl_tokens]  # what the app's tokenizer produces
        prompt = onnx_ids["prompt"][: args.prompt_tokens]
        if len(ppl_ids) < args.ppl_tokens or len(prompt) < args.prompt_tokens:
            raise SystemExit("not enough XQuAD text for the requested token counts")
        result["inputs"] = {"ppl_tokens": len(ppl_ids), "window": args.window,
                            "ppl_text_chars": len(text["ppl"]), "prompt_tokens": len(prompt),
                            "new_tokens": args.new_tokens, "bos": False,
                            "windowing": "non-overlapping windows, empty cache each, scored from "
                                         "the 2nd token"}

        speed_job = {"prompt": prompt, "new_tokens": args.new_tokens, "mask_ids": eos_ids(folder)}
        speed: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
        for rep in range(args.repeats):
            order = list(engines) if rep % 2 == 0 else list(engines)[::-1]
            for name in order:
                py, script, model = engines[name]
                pressure = wait_for_quiet(args.quiet_pressure, args.max_wait)
                log(f"speed {name} run {rep + 1}/{args.repeats} (CPU pressure {pressure:.0f}%)")
                run = run_worker(py, script, "speed", model, speed_job, args.threads, work)
                run["cpu_pressure_before"] = pressure
                run["cpu_pressure_after"] = cpu_pressure()
                speed[name].append(run)
        if args.profile:
            log("profiling one onnxruntime-genai speed run")
            py, script, model = engines["onnxruntime-genai"]
            prefix = work / "ort-profile"
            run_worker(py, script, "speed", model, speed_job | {"profile_prefix": str(prefix)},
                       args.threads, work)
            found = sorted(work.glob("ort-profile*.json"))
            result["onnx_profile"] = (summarize_profile(found[-1], args.new_tokens) if found
                                      else {"error": "onnxruntime wrote no profile"})
        ppl: dict[str, dict[str, Any]] = {}
        for name, (py, script, model) in engines.items():
            log(f"perplexity {name}")
            ppl[name] = run_worker(py, script, "ppl", model, {"ids": ppl_ids, "window": args.window},
                                   args.threads, work)

    rows: dict[str, dict[str, float]] = {}
    for name in engines:
        runs = speed[name]
        rows[name] = {key: statistics.median(r[key] for r in runs)
                      for key in ("prompt_tok_s", "ttft_ms", "decode_tok_s", "load_s")}
        rows[name]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        rows[name]["perplexity"] = ppl[name]["perplexity"]
    onnx, llama = rows["onnxruntime-genai"], rows["llama.cpp"]
    ratio = {key: onnx[key] / llama[key] for key in onnx if llama.get(key)}
    result["ratio_onnx_over_llamacpp"] = ratio
    result["engines"] = {
        name: {"summary": rows[name], "version": speed[name][0]["engine"],
               "speed_runs": [{k: v for k, v in r.items() if k not in ("engine", "tokens")} for r in speed[name]],
               "generated_tokens": speed[name][0]["tokens"],
               "perplexity_run": {k: v for k, v in ppl[name].items() if k not in ("nll", "argmax", "engine")}}
        for name in engines}
    a, b = ppl["onnxruntime-genai"], ppl["llama.cpp"]
    gen_a, gen_b = speed["onnxruntime-genai"][0]["tokens"], speed["llama.cpp"][0]["tokens"]
    result["agreement"] = {
        "mean_abs_nll_difference": statistics.fmean(abs(x - y) for x, y in zip(a["nll"], b["nll"])),
        "max_abs_nll_difference": max(abs(x - y) for x, y in zip(a["nll"], b["nll"])),
        "top1_agreement": statistics.fmean(x == y for x, y in zip(a["argmax"], b["argmax"])),
        "greedy_common_prefix_tokens": compare_ids(gen_a, gen_b)["first_difference"] or len(gen_a),
    }
    result["cli"] = {"status": "skipped"} if args.skip_cli else time_cli(folder, args.repeats, args.quiet_pressure, args.max_wait)
    result["machine"]["load_average_end"] = os.getloadavg()
    busy = [r["cpu_pressure_before"] for runs in speed.values() for r in runs
            if r["cpu_pressure_before"] >= args.quiet_pressure]
    result["noisy_runs"] = len(busy)
    if busy:
        log(f"warning: {len(busy)} timed runs started with other work competing for the CPUs "
            f"(pressure up to {max(busy):.0f}%); timings are pessimistic and noisy")
    ppl_gap = abs(ratio["perplexity"] - 1.0)
    startup = result["cli"].get("spawn_to_exit_ms")
    result["targets"] = {
        "perplexity": {"what": "perplexity within 1% of llama.cpp's", "met": ppl_gap <= 0.01,
                       "value": f"{(ratio['perplexity'] - 1) * 100:+.2f}%"},
        "decode": {"what": "decode speed >= llama.cpp's", "met": ratio["decode_tok_s"] >= 1.0,
                   "value": f"{ratio['decode_tok_s']:.3f}x"},
        "startup": {"what": "archivist ask, process start to first token < 2 s",
                    "met": None if startup is None else startup < 2000.0,
                    "value": "n/a" if startup is None else f"{startup / 1000:.2f} s (spawn to exit)"},
    }
    table = render(rows, result)
    result["table"] = table.splitlines()
    m = result["machine"]
    versions = " | ".join(f"{k} {v}" for e in result["engines"].values() for k, v in e["version"].items()
                          if k not in ("name", "system_info", "python"))
    print(f"{m['cpu']} ({m['usable_cpus']} usable CPUs, {'/'.join(m['cpu_flags'])}), "
          f"{args.threads} threads | {versions}")
    print("tokenizers agree: " + ", ".join(f"{k} {v['identical']}" for k, v in agreement.items()))
    print(table)
    if "onnx_profile" in result:
        for phase, data in result["onnx_profile"].items():
            if "ms_per_run" not in data:
                continue
            print(f"onnxruntime profile, {phase}: {data['ms_per_run']:.2f} ms/run; slowest nodes: " +
                  ", ".join(f"{k} {v:.2f}" for k, v in list(data["slowest_nodes_ms_per_run"].items())[:5]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
