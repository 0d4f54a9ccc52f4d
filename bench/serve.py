"""The API's cost: what the HTTP layer adds to a chat turn, throughput and time to first
token at 1, 4 and 16 clients on the built-in model, and memory over 1,000 requests.

    .venv/bin/python bench/serve.py                 # writes bench/results/serve.json
    .venv/bin/python bench/serve.py --quick         # fewer requests, for a smoke run

Three parts, each against the same thing called in-process (``Assistant.stream``, as the
CLI and the window call it):

1. **Overhead per request** with the scripted model (``archivist.testing``: no model
   cost, so what is left is the server, the worker thread, JSON and HTTP): the median
   wall time of a non-streaming and a streaming request through the official ``openai``
   client, minus the median of the same turn in-process. Target: under 5 ms.
2. **The built-in model** (SmolLM2-135M, without documents, ``--max-tokens`` greedy
   tokens per answer) with 1, 4 and 16 clients streaming at once: total tokens/s, and
   the median and 95th percentile time to first token as each client sees it (queueing
   included: one model answers one request at a time). The in-process row runs the same
   requests one after another. Target: tokens/s through the API within 10% of in-process.
3. **Memory** of the server's process every 100 of 1,000 requests with the scripted
   model: it should stay flat.

The server runs in a process of its own, as ``archivist serve`` does.

Everything runs on 127.0.0.1, bounded in count; the server stops at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "serve.json"
MODEL_DIR = ROOT / ".cache" / "test-models" / "smollm2-135m-instruct"


def log(message: str) -> None:
    print(f"[serve] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


REPLY = "Quimby holds the Zorblat festival every June. It has 4,000 people."


def child(kind: str, model_dir: Path) -> None:
    """The server, in a process of its own as ``archivist serve`` runs (a client in the
    server's own process measured a 45 ms stall per request on a kept-alive connection on
    this machine, which no real client pays). ``kind``: "scripted" (no model cost: the
    same reply every time) or "real" (the built-in model). Prints the URL, serves until
    stdin closes."""
    from archivist.api.server import ApiServer
    from archivist.api.settings import ServeSettings
    from archivist.application import Application
    from archivist.model_service import MODEL_SETTING
    from archivist.testing import ScriptedBackend, use_scripted_model

    class Always(ScriptedBackend):
        def next_reply(self) -> list[str]:
            self.reply(REPLY)
            return super().next_reply()

    app = Application(Path(tempfile.mkdtemp(prefix="bench-serve-child-")))
    if kind == "scripted":
        use_scripted_model(app, Always())
    else:
        app.settings().set(MODEL_SETTING, str(model_dir))
        app.load_model()
    app.host.safety_filters(), app.host.retrievers()  # warm, as a running app is
    server = ApiServer(app, ServeSettings(port=0, max_queue=64, queue_timeout_s=3600)).start()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()
    app.close()


class Child:
    def __init__(self, kind: str, model_dir: Path) -> None:
        import subprocess

        self.process = subprocess.Popen([sys.executable, __file__, "--child", kind, "--model-dir", str(model_dir)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the server did not start: {self.url!r}")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def client(server: Any) -> Any:
    import openai

    return openai.OpenAI(base_url=server.url, api_key="local", max_retries=0, timeout=600)


# ----------------------------------------------------------------------------- 1. overhead


def overhead(requests: int, model_dir: Path) -> dict[str, Any]:
    from archivist.application import Application
    from archivist.testing import use_scripted_model

    home = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    app = Application(home)
    scripted = use_scripted_model(app)
    app.host.safety_filters(), app.host.retrievers()  # warm, as a running app is
    reply = REPLY
    messages = [{"role": "user", "content": "Tell me about Quimby."}]

    def in_process() -> float:
        scripted.reply(reply)
        started = time.perf_counter()
        for _ in app.assistant().stream(messages[0]["content"], use_documents=False, conversation_id=None):
            pass
        return time.perf_counter() - started

    server = Child("scripted", model_dir)
    c = client(server)

    def api(stream: bool) -> float:
        started = time.perf_counter()
        if stream:
            for _ in c.chat.completions.create(model="archivist:nodocs", messages=messages, stream=True):
                pass
        else:
            c.chat.completions.create(model="archivist:nodocs", messages=messages)
        return time.perf_counter() - started

    import httpx

    raw = httpx.Client(timeout=600)

    def api_raw() -> float:
        """The same request with httpx alone: what the server costs without the openai client's own work."""
        started = time.perf_counter()
        raw.post(f"{server.url}/chat/completions", json={"model": "archivist:nodocs", "messages": messages}).json()
        return time.perf_counter() - started

    for _ in range(20):  # warm-up: imports, first connections, the safety filter's caches
        in_process(), api(False), api(True), api_raw()
    rows: dict[str, list[float]] = {"in-process": [], "api": [], "api, streamed": [], "api, raw httpx": []}
    for _ in range(requests):  # interleaved, so drift hits all of them alike
        rows["in-process"].append(in_process())
        rows["api"].append(api(False))
        rows["api, streamed"].append(api(True))
        rows["api, raw httpx"].append(api_raw())
    server.stop()
    app.close()
    base = statistics.median(rows["in-process"])
    return {
        "requests": requests,
        "median_ms": {k: round(statistics.median(v) * 1000, 2) for k, v in rows.items()},
        "p95_ms": {k: round(percentile(v, 0.95) * 1000, 2) for k, v in rows.items()},
        "overhead_ms": {k: round((statistics.median(v) - base) * 1000, 2) for k, v in rows.items()
                        if k != "in-process"},
    }


# ----------------------------------------------------------------------------- 2. real model


def real_model(clients: list[int], per_client: int, max_tokens: int, model_dir: Path) -> dict[str, Any]:
    from archivist.application import Application
    from archivist.model_service import MODEL_SETTING
    from archivist.types import GenerationOptions

    home = Path(tempfile.mkdtemp(prefix="bench-serve-real-"))
    app = Application(home)
    app.settings().set(MODEL_SETTING, str(model_dir))
    app.load_model()
    app.host.safety_filters(), app.host.retrievers()
    questions = ["What is a library?", "Why is the sky blue?", "Name three rivers in Europe.",
                 "What does a lighthouse keeper do?", "How do bees make honey?", "What is rain?"]
    options = GenerationOptions(max_new_tokens=max_tokens)
    rows = []

    def in_process_row(n_requests: int) -> dict[str, Any]:
        ttfts, tokens = [], 0
        started = time.perf_counter()
        for i in range(n_requests):
            t0 = time.perf_counter()
            first = None
            answer = None
            for event in app.assistant().stream(questions[i % len(questions)], use_documents=False,
                                                options=options):
                if event.kind == "text" and first is None:
                    first = time.perf_counter() - t0
                if event.kind == "done":
                    answer = event.answer
            ttfts.append(first if first is not None else time.perf_counter() - t0)
            tokens += answer.stats.completion_tokens if answer else 0
        wall = time.perf_counter() - started
        return {"clients": "in-process", "requests": n_requests, "tokens": tokens,
                "tokens_per_s": round(tokens / wall, 2), "ttft_median_ms": round(statistics.median(ttfts) * 1000),
                "ttft_p95_ms": round(percentile(ttfts, 0.95) * 1000)}

    in_process_row(2)  # warm-up
    baseline = in_process_row(per_client * 2)
    rows.append(baseline)
    app.close()  # the model leaves this process: the server's process holds its own
    server = Child("real", model_dir)
    for _ in client(server).chat.completions.create(model="archivist:nodocs", stream=True, max_tokens=4,
                                                    messages=[{"role": "user", "content": "Hi"}]):
        pass  # warm-up
    for n in clients:
        ttfts: list[float] = []
        tokens = [0]
        lock = threading.Lock()

        def one_client(k: int, ttfts: list[float] = ttfts, tokens: list[int] = tokens,
                       lock: threading.Lock = lock) -> None:
            c = client(server)
            for i in range(per_client):
                t0 = time.perf_counter()
                first = None
                used = 0
                for chunk in c.chat.completions.create(
                        model="archivist:nodocs", messages=[{"role": "user", "content": questions[(k + i) % 6]}],
                        max_tokens=max_tokens, stream=True, stream_options={"include_usage": True}):
                    if chunk.choices and chunk.choices[0].delta.content and first is None:
                        first = time.perf_counter() - t0
                    if chunk.usage is not None:
                        used = chunk.usage.completion_tokens
                with lock:
                    ttfts.append(first if first is not None else time.perf_counter() - t0)
                    tokens[0] += used

        threads = [threading.Thread(target=one_client, args=(k,)) for k in range(n)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        row = {"clients": n, "requests": n * per_client, "tokens": tokens[0],
               "tokens_per_s": round(tokens[0] / wall, 2), "ttft_median_ms": round(statistics.median(ttfts) * 1000),
               "ttft_p95_ms": round(percentile(ttfts, 0.95) * 1000)}
        row["vs_in_process"] = f"{(row['tokens_per_s'] / baseline['tokens_per_s'] - 1) * 100:+.1f}%"
        rows.append(row)
        log(f"{n} clients: {row}")
    server.stop()
    return {"max_tokens": max_tokens, "model": str(model_dir.name), "rows": rows}


# ----------------------------------------------------------------------------- 3. memory


def memory(requests: int, model_dir: Path) -> dict[str, Any]:
    server = Child("scripted", model_dir)
    c = client(server)
    samples = []
    for i in range(requests + 1):
        if i % 100 == 0:
            samples.append({"requests": i, "rss_mib": round(server.rss_mib(), 1)})
        if i == requests:
            break
        if i % 2:
            c.chat.completions.create(model="archivist:nodocs", messages=[{"role": "user", "content": f"q{i}"}])
        else:
            for _ in c.chat.completions.create(model="archivist:nodocs", stream=True,
                                               messages=[{"role": "user", "content": f"q{i}"}]):
                pass
    server.stop()
    growth_after_warmup = samples[-1]["rss_mib"] - samples[1]["rss_mib"]
    return {"requests": requests, "samples": samples, "growth_after_first_100_mib": round(growth_after_warmup, 1)}


# ----------------------------------------------------------------------------- 4. the window


CLIENT = """
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="local", max_retries=0, timeout=600)
for _ in range(int(sys.argv[3])):
    for _ in c.chat.completions.create(model="archivist:nodocs", stream=True, max_tokens=int(sys.argv[2]),
                                       messages=[{"role": "user", "content": "Tell me a long story about a lighthouse."}]):
        pass
"""


def gui_stall(model_dir: Path, new_tokens: int, answers: int) -> dict[str, Any]:
    """The window's event loop while the API it started (Settings > Local API: uvicorn on
    a thread of the window's process) streams answers to a client in another process:
    the longest gap between two ticks of a 1 ms QTimer, beyond its period (bench/gui.py's
    measure; its target is under 50 ms)."""
    import subprocess

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QTimer

    from archivist.application import Application
    from archivist.gui.launch import qt_application
    from archivist.gui.window import MainWindow
    from archivist.model_service import MODEL_SETTING

    qapp = qt_application()
    with tempfile.TemporaryDirectory(prefix="archivist-bench-serve-gui-") as tmp:
        app = Application(tmp, isolate_model=True)  # as the window runs it
        app.settings().set(MODEL_SETTING, str(model_dir))
        app.load_model()
        window = MainWindow(app, load_model=False)
        window.show()
        box = window.settings_page.api_server
        box.port.setValue(0)
        started = box.start()
        assert started is not None
        settle = time.monotonic() + 3.0
        while time.monotonic() < settle or not box.running:
            qapp.processEvents()
            time.sleep(0.01)
        gaps: list[float] = []
        clock = QElapsedTimer()
        ticker = QTimer()
        ticker.setInterval(1)

        def tick() -> None:
            gaps.append(clock.nsecsElapsed() / 1e6)
            clock.restart()
            if client.poll() is not None:
                ticker.stop()
                qapp.quit()

        ticker.timeout.connect(tick)
        client = subprocess.Popen([sys.executable, "-c", CLIENT, box.server.url, str(new_tokens), str(answers)])
        clock.start()
        ticker.start()
        qapp.exec()
        box.shutdown()
        window.close()
        app.close()
    gaps = gaps[1:] or [0.0]
    stalls = sorted(max(0.0, g - 1.0) for g in gaps)
    return {"answers": answers, "new_tokens": new_tokens, "client_exit": client.returncode,
            "longest_stall_ms": round(stalls[-1], 2), "p99_stall_ms": round(stalls[int(0.99 * (len(stalls) - 1))], 2),
            "ticks": len(gaps)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--gui", action="store_true", help="Only the window's stall while its API streams.")
    parser.add_argument("--child", choices=["scripted", "real"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        logging_quiet()
        child(args.child, args.model_dir)
        return 0
    logging_quiet()
    if args.gui:
        result = gui_stall(args.model_dir, 64, 3)
        print(json.dumps(result))
        out = args.out.with_name("serve_gui.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return 0
    report: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                              "python": platform.python_version()}
    log("overhead (scripted model)")
    report["overhead"] = overhead(30 if args.quick else 200, args.model_dir)
    if not args.skip_real:
        log("the built-in model at 1, 4 and 16 clients")
        report["real_model"] = real_model([1, 4, 16], 1 if args.quick else 2, args.max_tokens, args.model_dir)
    log("memory over the requests")
    report["memory"] = memory(200 if args.quick else 1000, args.model_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    o = report["overhead"]
    print(f"overhead per request ({o['requests']} each, scripted model): median in-process "
          f"{o['median_ms']['in-process']} ms; api {o['median_ms']['api']} ms (+{o['overhead_ms']['api']}); "
          f"streamed {o['median_ms']['api, streamed']} ms (+{o['overhead_ms']['api, streamed']}); "
          f"raw httpx {o['median_ms']['api, raw httpx']} ms (+{o['overhead_ms']['api, raw httpx']})")
    if "real_model" in report:
        print(f"{'clients':>11} {'requests':>8} {'tokens/s':>9} {'TTFT med':>9} {'TTFT p95':>9}  vs in-process")
        for r in report["real_model"]["rows"]:
            print(f"{r['clients']!s:>11} {r['requests']:>8} {r['tokens_per_s']:>9} {r['ttft_median_ms']:>7}ms "
                  f"{r['ttft_p95_ms']:>7}ms  {r.get('vs_in_process', '')}")
    m = report["memory"]
    print("memory: " + ", ".join(f"{s['requests']}: {s['rss_mib']} MiB" for s in m["samples"])
          + f"  (growth after the first 100: {m['growth_after_first_100_mib']} MiB)")
    print(f"wrote {args.out}")
    return 0


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
