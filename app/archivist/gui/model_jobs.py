"""Building and importing models in a child process, for the Models page.

Converting a GGUF file (an import, or the built-in model's build) is numpy work that
holds the GIL in long stretches: run on a thread of the window's process it stalled the
event loop for 157 ms (SmolLM2-135M, 2 cores). So, like the model and the indexing, it
runs in a child (:class:`~archivist.child_process.ChildProcess`) that calls the model
service's :meth:`~archivist.model_service.ModelService.import_gguf` or
:meth:`~archivist.model_service.ModelService.build_default`; the page's worker thread
only waits on the pipe (which releases the GIL) and passes the progress on.

The exchange: the parent starts the child with one request (:class:`ImportGguf` or
:class:`BuildDefault`); the child answers with any number of :class:`JobProgress`, then
one :class:`JobDone` or :class:`JobFailed`, and ends. Qt-free: the child imports no Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archivist.child_process import Channel, ChildEnded, ChildProcess
from archivist.errors import ArchivistError

# -- requests (parent -> child, as the child's argument) -------------------------------


@dataclass(frozen=True)
class ImportGguf:
    """``archivist models import GGUF --id MODEL_ID`` (the command's default graph options)."""

    gguf: str
    model_id: str


@dataclass(frozen=True)
class BuildDefault:
    """``archivist models build-default``: the chat model, then the search encoder."""

    cache_dir: str | None = None  # None: the service's default wheel folder


JobRequest = ImportGguf | BuildDefault

# -- replies (child -> parent) ---------------------------------------------------------


@dataclass(frozen=True)
class JobProgress:
    stage: str
    fraction: float  # 0 to 1


@dataclass(frozen=True)
class JobDone:
    path: str  # the model folder made


@dataclass(frozen=True)
class JobFailed:
    text: str  # one line for the page, as workers.describe_error writes it


def run_job(models_dir: Path, request: JobRequest, report: Callable[[JobProgress], None]) -> Path:
    """Run ``request`` in a child over the models folder ``models_dir``, passing each
    :class:`JobProgress` to ``report``; the folder it made, or :class:`ArchivistError`."""
    kind = "import" if isinstance(request, ImportGguf) else "build"
    child = ChildProcess(_serve, (str(models_dir), request), name=f"archivist-{kind}")
    try:
        while True:
            message = child.receive()
            if isinstance(message, JobProgress):
                report(message)
            elif isinstance(message, JobDone):
                return Path(message.path)
            elif isinstance(message, JobFailed):
                raise ArchivistError(message.text)
            else:
                raise ArchivistError(f"the {kind} process sent {message!r:.80}")
    except ChildEnded as exc:
        raise ArchivistError(str(exc)) from None
    finally:
        child.close()


def _serve(channel: Channel, models_dir: str, request: JobRequest) -> None:
    """The child: one request, its progress, then its outcome."""
    from archivist.model_service import ModelService

    service = ModelService(Path(models_dir))

    def progress(stage: str, fraction: float) -> None:
        channel.send(JobProgress(str(stage), float(fraction)))

    try:
        if isinstance(request, ImportGguf):
            folder = service.import_gguf(Path(request.gguf), request.model_id, progress=progress).path
        else:
            cache = Path(request.cache_dir) if request.cache_dir else None
            folder = service.build_default(progress, cache).model
        channel.send(JobDone(str(folder)))
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which shows it
        channel.send(JobFailed(str(exc) if isinstance(exc, ArchivistError) else f"unexpected {type(exc).__name__}: {exc}"))
