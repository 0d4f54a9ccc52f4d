"""Building and importing models in a child process, for the Models page.

Converting a GGUF file (an import, or the built-in model's build) is numpy work that
holds the GIL in long stretches: run on a thread of the window's process it stalled the
event loop for 157 ms (SmolLM2-135M, 2 cores). So, like the model and the indexing, it
runs in a spawned process; the page's worker thread only waits on the pipe (which
releases the GIL) and passes the progress on. Qt-free: the child imports no Qt.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from archivist.errors import ArchivistError


def run_job(kind: str, args: tuple[Any, ...], report: Callable[[tuple[str, float]], None]) -> str:
    """Run ``kind`` ("import" or "build") in a child; ``report((stage, fraction))``; the folder."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_serve, args=(child, kind, args), name=f"archivist-{kind}", daemon=True)
    process.start()
    child.close()
    try:
        while True:
            try:
                message = parent.recv()
            except (EOFError, OSError):
                raise ArchivistError(f"the {kind} process ended unexpectedly (exit code {process.exitcode})") from None
            if message[0] == "progress":
                report((message[1], message[2]))
            elif message[0] == "done":
                return str(message[1])
            else:
                raise ArchivistError(str(message[1]))
    finally:
        process.join(5)
        if process.is_alive():
            process.kill()
        parent.close()


def _serve(conn: Connection, kind: str, args: tuple[Any, ...]) -> None:
    import archivist  # noqa: F401  (telemetry off before onnxruntime loads)

    def report(stage: str, fraction: float) -> None:
        conn.send(("progress", str(stage), float(fraction)))

    try:
        if kind == "import":
            result = import_gguf(*args, progress=report)
        elif kind == "build":
            result = build_builtin(*args, progress=report)
        else:
            raise ArchivistError(f"unknown job {kind!r}")
        conn.send(("done", str(result)))
    except BaseException as exc:  # one line for the page, as workers.describe_error writes it
        text = str(exc) if isinstance(exc, ArchivistError) else f"unexpected {type(exc).__name__}: {exc}"
        conn.send(("error", text))
    finally:
        conn.close()


def import_gguf(gguf: str, target: str, model_id: str, *, progress: Callable[[str, float], None]) -> Path:
    """``archivist models import FILE --id ID`` (fast graph options, as the command's default)."""
    from archivist_models.gguf import GraphOptions, convert

    return convert(Path(gguf), Path(target), progress=progress, model_id=model_id, options=GraphOptions.fast())


def build_builtin(models: str, cache: str, *, progress: Callable[[str, float], None]) -> Path:
    """``archivist models build-default``: the chat model, then the search encoder."""
    from archivist_models.default import build_default_model
    from archivist_models.embedder import build_embedder

    folder = build_default_model(Path(models), Path(cache), progress=lambda s, f: progress(s, f * 0.8))
    progress("building the search encoder", 0.8)
    build_embedder(Path(models) / "embedder-minilm-l6-v2", Path(cache), progress=lambda m: progress(m, 0.9))
    return folder
